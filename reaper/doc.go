// Package reaper is a process's single waiter for its children: one
// goroutine calls wait4(-1) on every SIGCHLD and hands each exit to whoever
// watches that PID. The supervisor, `moor run` and the hypervisor anchor
// (PID 1 of its task) each hold one.
//
// It must be the only waiter: nothing else in the process may call wait
// on a child it could collect, except inside HoldStarts, which keeps the
// reaping loop off while libcontainer waits for its own helpers. Watch a
// PID before the child can exit, or its exit goes to OnOrphan.
//
// BecomeSubreaper is the one way moor's processes (the init-style
// supervisor, moor run, the hypervisor anchor, the benchmark's and the
// tests' top processes) make orphans come to them: it sets the child
// subreaper flag and checks that it holds.
//
// Concurrency: a Reaper is safe for concurrent use; watchers are called on
// the reaping goroutine and must not block.
package reaper
