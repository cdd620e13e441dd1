// Package vmbundle writes the bundle of a hypervisor task and undoes, at
// delete, what such a task leaves on the host. Write turns a VM
// description into config.json (built by vmbundle/taskspec) and the
// task's run directory: the VM description as the task sees it and, for
// a VM with firmwareVars, the VM's own copy of its UEFI variable store,
// made once and kept. With an app bundle it also builds the app's
// initramfs (moor-guest as /init, its configuration, the kernel modules it
// loads) into the run directory, named by its content; WriteContainer
// writes a nohyper VM's app as a plain container task. Poststop is the
// task's poststop hook ("moor vm poststop"): it destroys a Xen domain the
// anchor could not and removes the sockets and files the device model left
// in the run directory.
//
// It sits above the lifecycle, whose spec rules it applies (LoadSpec,
// RequireMinimumSpec), and apart from devicemodel, the VM core below the
// lifecycle that the lean anchor (cmd/moor-anchor) links: it needs the
// runtime spec, which the anchor must not link.
//
// It must not start tasks or signal processes; the only programs it runs
// are xl, for a Xen domain's destroy, and the decompressors of xz and zstd
// kernel modules.
//
// Concurrency: Write and Poststop keep no state; two Writes to one bundle
// must not run at once (the variable-store copy alone is safe: it never
// replaces a copy that is there).
package vmbundle
