// Package supervisor is moor's init system (`moor supervise`): it boots a
// linuxkit-style containers tree (onboot tasks in order, then services),
// is the process's one reaper (PID 1 or a checked child subreaper),
// restarts services by policy with a capped backoff, adopts the services
// an earlier supervisor left running, reconciles on SIGHUP, sends task
// output to log files or to a console (each line prefixed with the task's
// name), writes status dumps, and shuts everything down in order. What a
// machine's PID 1 does around it (early mounts, console, poweroff) is
// package supervisor/machine.
//
// Its restart changes nothing: the Journal (<root>/supervise-<namespace>.json)
// keeps the boot (the kernel's boot_id) in which onboot ran and which
// onboot tasks were started, so that they run once per boot, and the
// services that have no task (being restarted, or whose create failed:
// kept with their error, retried by policy and at SIGHUP). A new Manager
// adopts running services, leaves stopped those their policy ended for
// good, restarts by policy those that ended unwatched, with the counts of
// their records. As PID 1 or a subreaper it records the exit of any moor
// task's anchor it reaps as an orphan (Orphan), whoever made the task.
//
// Task logs (LogFiles) are bounded whatever a task writes: it writes into
// a named pipe in the log directory, which a writer of the supervisor's
// appends to the task's log, rotating by rename exactly at the size bound
// (margin zero: no file is longer, a task's logs never take more than
// (Keep+1)×MaxBytes; on a full file system the task's oldest output goes
// first). The task's end is opened read-write so that the pipe always has
// a reader: when the supervisor dies, the task's output waits in the pipe
// and then the task's writes wait (never EPIPE or SIGPIPE) until the next
// supervisor opens the pipe by its name again.
//
// It drives tasks only through package lifecycle's public API and must not
// reach into its state store or libcontainer. The runtime, the reaper and
// the signals can be handed in (ManagerOptions), so its unit tests run a
// Manager over lifecycle/fake without root.
//
// Concurrency: a Manager's work runs on the goroutine that calls Run; the
// reaper's goroutine, signal handling and timers only post work to it, so
// its thread count does not grow with the number of services. A
// ConsoleOutput copies each task's pipe on a goroutine of its own, parked
// in the runtime's poller (not a thread), touching only the Console; a
// LogFiles does the same, each goroutine touching only its task's files.
package supervisor
