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
// It drives tasks only through package lifecycle's public API and must not
// reach into its state store or libcontainer. The runtime, the reaper and
// the signals can be handed in (ManagerOptions), so its unit tests run a
// Manager over lifecycle/fake without root.
//
// Concurrency: a Manager's work runs on the goroutine that calls Run; the
// reaper's goroutine, signal handling and timers only post work to it, so
// its thread count does not grow with the number of services. A
// ConsoleOutput copies each task's pipe on a goroutine of its own, parked
// in the runtime's poller (not a thread), touching only the Console.
package supervisor
