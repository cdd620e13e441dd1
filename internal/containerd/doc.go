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
// It runs the containerd, shim and ctr of a directory the caller names
// (Options.Bin; those on PATH by default) and writes config.toml in the
// form that containerd reads: version 2 for containerd 1.x (the CRI
// plugin one table, io.containerd.grpc.v1.cri), version 3 for containerd
// 2.x (the image service and the runtime plugins of their own,
// io.containerd.cri.v1.images with the sandbox image pinned and
// io.containerd.cri.v1.runtime with the handlers; containerd 2.x's NRI,
// whose socket is a fixed host path, disabled).
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
// its directory except its own shims' sockets (containerd 1.6 and 2.x put
// them in /run/containerd/s) and ctr's FIFO directories, which it removes only
// when empty.
//
// Concurrency: a Daemon is used by one goroutine at a time; several
// daemons in different directories may run at once.
package containerd
