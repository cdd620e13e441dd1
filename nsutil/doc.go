// Package nsutil owns namespace identity and network namespaces: which
// namespaces a process is in (by the inode numbers /proc/<pid>/ns/* show),
// new network namespaces pinned by a bind mount so they outlive their
// processes, and moving network interfaces between network namespaces.
// It also probes whether the kernel has time namespaces. User namespaces
// are package userns's.
//
// It must not spawn tasks or know about OCI specs.
//
// Concurrency: the functions are safe for concurrent use. Those that enter
// a namespace do so on a goroutine of their own, locked to its OS thread; a
// thread that cannot be brought back to its namespace is never unlocked, so
// the Go runtime ends it instead of reusing it.
package nsutil
