// Package reaper is a process's single waiter for its children: one
// goroutine calls wait4(-1) on every SIGCHLD and hands each exit to whoever
// watches that PID. The supervisor, `moor run` and the hypervisor anchor
// (PID 1 of its task) each hold one.
package reaper
