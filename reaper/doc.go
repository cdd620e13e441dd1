// Package reaper is a process's single waiter for its children: one
// goroutine calls wait4(-1) on every SIGCHLD and hands each exit to whoever
// started or watches that PID. The supervisor, `moor run`, a machine's init
// and the hypervisor anchor (PID 1 of its task) each hold one.
//
// It must be the only waiter: nothing else in the process may call wait
// on a child it could collect. Every helper process of moor's own (a
// hook, the user-namespace helper, a device model, a guest's app) is
// started through Start, which takes the subscription to its exit with
// the fork, so the exit goes to whoever started it and to nobody else;
// such a helper never needs the reaper held. With no reaper of moor's in
// the process (a CLI verb other than run), Start on a nil Reaper falls
// back to a plain start and wait: callers hold a *Reaper that may be nil
// and have one way to start a helper.
//
// The one exception is libcontainer, which forks and waits for helpers of
// its own while it makes a task's init or an exec'd process: HoldStarts
// keeps the reaping loop off across that call and the Watch of the
// process it leaves. Watch such a PID before the hold ends, or its exit
// goes to OnOrphan.
//
// BecomeSubreaper is the one way moor's processes (the init-style
// supervisor, moor run, the hypervisor anchor, the benchmark's and the
// tests' top processes) make orphans come to them: it sets the child
// subreaper flag and checks that it holds.
//
// Concurrency: a Reaper is safe for concurrent use; onExit functions and
// watchers are called on the reaping goroutine and must not block.
package reaper
