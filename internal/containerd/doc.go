// Package containerd runs a private containerd for a test or the
// benchmark: its config.toml, root, state, temporary files and sockets all
// live in one directory the caller gives, it opens no TCP listener (the
// gRPC and ttrpc addresses are unix sockets there; the debug and metrics
// addresses are empty; only the CRI plugin's exec and attach stream server
// listens, on a loopback port the kernel picks, as CRI has no other way)
// and it has the CRI plugin only when asked for, with
// runtime handlers of the caller's (runtime_type io.containerd.runc.v2,
// options.BinaryName), host networking only (no CNI configuration; the
// CNI directories are empty ones of its own) and restrict_oom_score_adj.
//
// Config renders config.toml and is pure. Start writes it, starts
// containerd and polls `ctr version` on its socket until it answers or a
// deadline passes. Stop ends the daemon by its PID and waits for it.
// RemoveAll kills and deletes every task and container it holds; Remove,
// after Stop, ends the shims that still serve it (by PID, found by the
// socket in their command line), unmounts whatever is mounted under the
// directory, removes the shims' sockets and the directory, and reports
// what it had to clean, so a test can fail on it. Cgroups are the
// caller's: they are whatever the tasks' specs named.
//
// It must not touch a containerd it did not start, nor any file outside
// its directory except its own shims' sockets (containerd 1.6 puts them in
// /run/containerd/s) and ctr's FIFO directories, which it removes only
// when empty.
//
// Concurrency: a Daemon is used by one goroutine at a time; several
// daemons in different directories may run at once.
package containerd
