// Package atomicfile writes files so that a reader sees the old content or
// the new, never a part: the content goes to a temporary file beside the
// target (".<name>.<random>"), which is then renamed over it (Write) or
// hard-linked to it, a rename that never replaces (Create). It is moor's
// one way to write state: task records and specs, the pid file, a
// hypervisor task's run state, a VM's variable store.
//
// Write does not fsync: moor's state lives on a tmpfs (the state root,
// /run/moor by default, as runc's) that does not outlive the boot, and a
// flush on every state change would cost each start a disk write where
// there is none to make. Create, which makes files meant to outlive the
// boot (a VM's variable store in its bundle), syncs the content before it
// links it into place.
//
// It must not import anything but the standard library: the lean anchor
// links it.
//
// Concurrency: two writers of one path may run at once; the last rename
// wins, and Create keeps the first file made.
package atomicfile
