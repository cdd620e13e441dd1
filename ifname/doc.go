// Package ifname is moor's one rule for network interface names, checked
// wherever a name comes from a description: a VM's taps and bridges
// (devicemodel) and the host interfaces an app moves into its task
// (rootfs).
//
// The rule is the kernel's (1 to 15 bytes, not "." or "..") narrowed to
// letters, digits and _.-, so that a valid name needs no quoting in
// qemu's options, an xl cfg or a shell.
//
// It must not import anything but the standard library: the lean anchor
// links it.
//
// Concurrency: Valid is pure.
package ifname
