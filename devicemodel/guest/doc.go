// Package guest is moor's guest init: PID 1 of the VM that runs a
// container app (moor vm spec --app), built as the small static
// moor-guest (cmd/moor-guest) and packed as /init into the initramfs moor
// makes for the app.
//
// Run mounts /dev, /proc and /sys, loads the kernel modules shipped in the
// initramfs (ConfigFile lists them in load order), opens the app's
// virtio-serial ports (devicemodel.PortControl, PortStdout, PortStderr),
// mounts the app's root from its 9p share at AppRoot (overlaid with a
// tmpfs when the app writes it, or when it is read-only and lacks a mount
// point: the guest makes them there, never on the host, and makes the
// overlay read-only again) and, below it, the app's volumes (9p shares
// too) and kernel file systems, each at its destination resolved inside
// the root, sets the
// hostname, and starts the app through the exec stage: the same binary
// re-executed (argv[0] ExecStage), which applies the rlimits, chroots into
// AppRoot, takes the app's groups and user, changes to its working
// directory and executes it (126 or 127 when that fails, as a shell does).
// The app's stdout and stderr are the output ports, its stdin /dev/null.
//
// Run is the one reaper of the guest. It forwards the signals the anchor
// sends over the control port to the app, and when the app exits it kills
// what is left, syncs, reports the exit ("exit code N" or "exit signal
// N"), waits for the anchor's ack and powers the guest off. A failure of
// its own before the app runs is reported as "error TEXT" and exit code
// ExitSetup. A signal that comes before the app started stops it from
// starting and is reported as the app's exit by that signal.
//
// It must not be used outside a guest: it mounts, kills every process
// and powers the machine off. It links nothing but the standard library,
// x/sys, devicemodel (the protocol) and reaper, so that moor-guest stays
// small: it is read from the initramfs into the guest's RAM.
//
// Its seams are the guest value Run makes: the root of its file systems,
// the kernel (mounts, modules, kill, reboot), how the ports are opened and
// the binary re-executed as the exec stage; unit tests give a temp dir, a
// fake kernel, socket pairs and a script.
//
// Concurrency: Run owns the process and is called once, from main; the
// exec stage (Exec) replaces the process.
package guest
