// Package vmm is the anchor program of a hypervisor task: PID 1 of the
// task, run as "moor anchor" from the moor binary bind-mounted read-only
// into the task (static, so any loader root will do, libc or not).
//
// Run removes what an earlier run left in the run directory (sockets,
// pidfile, run state), starts the device model (qemu, or xl for Xen) as its
// child, waits for it and lets the guest run, reaps every process of the
// task, publishes the guest's run state in devicemodel.RunStateFile and
// translates signals:
//
//	SIGTERM, SIGINT  ACPI powerdown (QMP system_powerdown / xl shutdown);
//	                 after the grace period a hard stop (QMP quit / xl destroy)
//	SIGUSR1          pause the guest
//	SIGUSR2          resume the guest
//
// A guest that powers off ends Run with devicemodel.EndPoweroff; a guest that
// ignored the powerdown, with EndForced; a device model that dies or a guest
// that crashes, with EndCrashed and the reason in the run state.
//
// It must not know about OCI specs or the supervisor's state: its world is
// the run directory and its children.
//
// Concurrency: Run owns the process's children and its signal handlers for
// the signals above and SIGCHLD; call it once per process.
package vmm
