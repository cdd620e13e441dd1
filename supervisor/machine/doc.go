// Package machine is moor as the first process of a booted kernel (PID 1
// of the initial PID namespace): what a machine's init does around the
// init system of package supervisor. Before the containers tree boots it
// moves off the kernel's rootfs onto a tmpfs (so that tasks can
// pivot_root), makes the early mounts (/proc, /sys, /dev with devpts, shm
// and mqueue, /run, /tmp, the cgroup hierarchies of the mode the kernel
// and its command line call for), logs to /dev/console, disables the
// kernel's Ctrl-Alt-Del reboot (it then arrives as SIGINT), sets the host
// name, brings up lo, loads the modules /etc/modules lists and watches
// the power button. Once the tree is shut down it syncs, unmounts
// (remounting read-only what will not go) and powers off or restarts
// the machine. It also builds the initramfs that boots such a machine
// (Image).
//
// It must never act on a machine it does not own: Boot refuses to run
// unless the process is PID 1 of the initial PID namespace, and every
// privileged call goes through the sys seam, whose real implementation
// only Boot makes, after that check. The pure parts (the mount plan, the
// cgroup mode, /etc/modules, power-button events, the unmount order, the
// image's contents) take readers or a root directory and are tested on
// their own.
//
// It has one waiter for its children, the reaper it makes once the setup
// is done: the init system's (ManagerOptions.Reaper) while the tree runs,
// and still the one that collects what is left as the machine goes down.
//
// Concurrency: Boot runs on the caller's goroutine until the machine
// halts; the signal forwarder and one reader per power-button device run
// on goroutines of their own and only send on a channel; the reaper runs
// on its own goroutine.
package machine
