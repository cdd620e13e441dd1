// Package procfs reads what /proc shows of processes: a process's stat
// (state, parent, start time), status (resident memory, threads), cgroup
// list and command line, the boot time, and ReadProcess, which gathers
// them for a report (moor info). The parsers take an io.Reader; the
// readers take a proc root (Root on the host) so tests can point them at
// a temporary directory. /proc/<pid>/cgroup has one parser, ParseCgroups.
//
// It must not open pidfds, signal processes or know what a task is (the
// anchor package holds processes); it imports only the standard library
// and x/sys, so the lean anchor may link it.
//
// Concurrency: it keeps no state; every function is safe for concurrent
// use.
package procfs
