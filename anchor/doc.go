// Package anchor owns the identity of a task's anchor process: its host PID
// and the start time the kernel gives it in /proc/<pid>/stat. Every signal to
// an anchor goes through a pidfd that was opened and then checked against
// that start time, so a PID that the kernel has handed to a stranger is never
// signalled; such an anchor simply reads as gone.
//
// It also holds the /proc readers the rest of moor uses: a process's stat,
// status, cgroup list and command line, the boot time, and ReadProcess,
// which gathers them for a report (moor info). The parsers take an
// io.Reader; the readers take a proc root so tests can point them at a
// temporary directory. Code outside this package does not parse /proc.
//
// It must not know about OCI specs, cgroup hierarchies or state files; it
// imports nothing of moor's, so the lean anchor may link it.
//
// Concurrency: Identity is a value; a Handle may be used from several
// goroutines, but Close must be called once, after every other use.
package anchor
