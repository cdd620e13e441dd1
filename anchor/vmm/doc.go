// Package vmm is the anchor program of a hypervisor task: PID 1 of the
// task, run from a binary bind-mounted read-only into the task: the lean
// moor-anchor (cmd/moor-anchor), or "moor anchor" when moor-anchor is not
// installed. Both are static, so any loader root will do, libc or not, and
// both enter through Main.
//
// Run removes what an earlier run left in the run directory (sockets,
// pidfile, run state), starts the device model (qemu, or xl for Xen) as its
// child, waits for it and lets the guest run, reaps every process of the
// task, publishes the guest's run state in devicemodel.RunStateFile and
// translates signals:
//
//	SIGTERM, SIGINT  ACPI powerdown (QMP system_powerdown / xl shutdown);
//	                 after the grace period a hard stop (QMP quit / xl destroy);
//	                 when the powerdown cannot be asked, the hard stop at once,
//	                 and when that cannot be asked either, SIGKILL of qemu
//	SIGUSR1          pause the guest
//	SIGUSR2          resume the guest
//
// A guest that powers off ends Run with devicemodel.EndPoweroff; a guest that
// ignored the powerdown or could not be asked, with EndForced; a device model that dies or a guest
// that crashes, with EndCrashed and the reason in the run state.
//
// A container app's VM (VM.App) differs: before qemu starts the anchor
// listens on the app's three port sockets, which qemu connects to; it
// copies the app's stdout and stderr to its own, records the guest init's
// started and exit messages (appPid, appExit) and acks the exit, passes
// SIGTERM, SIGINT, SIGHUP and SIGQUIT on to the app as "signal N" (SIGTERM
// and SIGINT still start the grace), and its Outcome's ExitCode is the
// app's status.
//
// It must not know about OCI specs or the supervisor's state: its world is
// the run directory and its children. It must stay small: moor-anchor
// links it, and what it imports (libcontainer, a CLI framework, netlink,
// a regexp engine...) is resident memory of every hypervisor task. Its
// dependencies are checked by cmd/moor-anchor's TestLeanDependencies.
//
// Its seams are in Options: Signals and Reaper replace the process's own
// signals and reaper (a test feeds signals and holds the one reaper of its
// process), and the unit tests put a fake device model and a fake clock
// in place of qemu or xl and of the grace's timers.
//
// Concurrency: Run owns the process's children and its signal handlers for
// the signals above and SIGCHLD (unless Options.Reaper and Signals are
// given); call it once per process.
package vmm
