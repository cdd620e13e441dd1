// Package anchor owns the identity of a task's anchor process: its host PID
// and the start time the kernel gives it in /proc/<pid>/stat. Every signal to
// an anchor goes through a pidfd that was opened and then checked against
// that start time, so a PID that the kernel has handed to a stranger is never
// signalled; such an anchor simply reads as gone.
//
// It reads /proc through procfs, with the proc root its callers give, so
// tests can point it at a temporary directory.
//
// It must not know about OCI specs, cgroup hierarchies or state files; of
// moor's it imports only procfs, so the lean anchor may link it.
//
// Concurrency: Identity is a value; a Handle may be used from several
// goroutines, but Close must be called once, after every other use.
package anchor
