// Package devicemodel is what a hypervisor task's anchor and its builders
// share: the VM description, the anchor tax (EVE's estimate of what the
// device model costs on top of the guest's RAM), the run state the anchor
// publishes and its exit codes, and the control protocol between the
// anchor and the guest init of a container app inside a VM (Message, the
// port names, AppExit, Outcome). Its backends build the device models' own
// inputs: devicemodel/qemu (argv, -readconfig file, a QMP client; q35 and
// arm64's virt) and devicemodel/xl (the xl cfg, an xl driver and its
// runners); devicemodel/taskspec builds the task's OCI spec,
// devicemodel/bundle writes the task's bundle (with a container app's
// initramfs) and is its poststop hook, and devicemodel/guest is the guest
// init.
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
// lean anchor binary (cmd/moor-anchor) links it.
// Everything here except the probes (HostProbe) and the run-state file
// helpers is pure.
//
// Concurrency: values are immutable once built; functions are safe for
// concurrent use.
package devicemodel
