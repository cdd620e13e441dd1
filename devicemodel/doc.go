// Package devicemodel turns a VM description into what a hypervisor task
// needs: the task's OCI spec (the loader's spec or the host's own root,
// read-only, with the anchor as its process), the anchor tax (EVE's estimate
// of what the device model costs on top of the guest's RAM), and the run
// state the anchor publishes. Its backends build the device models' own
// inputs: devicemodel/qemu (argv, -readconfig file, a QMP driver) and
// devicemodel/xl (the xl cfg and an xl driver).
//
// The VM description is JSON (see VM); Parse rejects unknown fields and
// contradictions with an error that names the field.
//
// A hypervisor task keeps its run directory (RunDir, a directory of the
// bundle) bind-mounted at TaskRunDir. The anchor writes there the device
// model's config, sockets, pidfile, console log and runstate.json, which
// ReadRunState reads from the host through the spec's annotations.
//
// It must not fork tasks or signal processes: the supervisor and the
// anchor (anchor/vmm) do that. Everything here except the probes
// (HostProbe) and the run-state file helpers is pure.
//
// Concurrency: values are immutable once built; functions are safe for
// concurrent use.
package devicemodel
