// Package devicemodel is what a hypervisor task's anchor and its builders
// share: the VM description, the anchor tax (EVE's estimate of what the
// device model costs on top of the guest's RAM), the run state the anchor
// publishes and its exit codes, and the control protocol between the
// anchor and the guest init of a container app inside a VM (Message, the
// port names, AppExit, Outcome). Its backends build the device models' own
// inputs: devicemodel/qemu (argv, -readconfig file, a QMP client; q35 and
// arm64's virt) and devicemodel/xl (the xl cfg, an xl driver and its
// runners); devicemodel/guest is the guest init. The host side of a
// hypervisor task, its OCI spec and its bundle, is vmbundle's, above the
// lifecycle.
//
// The VM description is JSON (see VM); Parse rejects unknown fields and
// contradictions with an error that names the field.
//
// A hypervisor task keeps its run directory (a directory of the bundle)
// bind-mounted at TaskRunDir. The anchor writes there the device model's
// config, sockets, pidfile, console log and runstate.json, which
// ReadRunState reads from the host through the spec's annotations.
//
// It must not fork tasks or signal processes: the supervisor and the
// anchor (anchor/vmm) do that. It must not import OCI, container or
// cgroup packages either (of moor's own, only cpulist and ifname): the
// lean anchor binary (cmd/moor-anchor) links it, and the lifecycle does
// (run states), so nothing under devicemodel imports the lifecycle or
// vmbundle (the TestLeanDependencies of cmd/moor-anchor and cmd/moor-guest
// check it).
// Everything here except the probes (HostProbe) and the run-state file
// helpers is pure.
//
// Concurrency: values are immutable once built; functions are safe for
// concurrent use.
package devicemodel
