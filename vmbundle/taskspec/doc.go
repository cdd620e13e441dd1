// Package taskspec builds the OCI spec of a hypervisor task from a VM
// description: the loader's root (read-only) or the host's own, the anchor
// binary bind-mounted read-only at TaskAnchor as the task's process, the
// VM's kernel, initrd, firmware and disks bind-mounted, the devices the
// hypervisor needs, a memory limit of the guest's RAM plus the anchor tax,
// a CPU quota of one CPU per vCPU, and the poststop hook "moor vm
// poststop". The anchor is the lean moor-anchor when one is given, else
// "moor anchor" from the moor binary. For a container app (PlanApp) the
// app's root and bind volumes are bind-mounted into the task and shared
// with the guest over 9p, and the guest boots the app's initramfs.
//
// It is part of vmbundle, the host side of hypervisor tasks, and apart
// from devicemodel so that the anchor, which links devicemodel, does not
// link the runtime spec. It is a package of its own because it is pure:
// vmbundle writes files, taskspec only builds the spec.
//
// It must not touch the host: it is pure.
//
// Concurrency: Build is safe for concurrent use.
package taskspec
