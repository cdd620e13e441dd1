// Package userns owns a task's user namespace of its own: what moor
// checks of it before anything is made, and what it makes for it at
// create.
//
// Check refuses, naming the field or the directory or filesystem, a spec
// whose user namespace moor cannot give: mappings without a user
// namespace; a kernel without user namespaces; UID or GID mappings that
// map host ID 0, leave the task's ID 0 unmapped, or hold an empty,
// overflowing or overlapping range; a root directory the task's root (an
// unprivileged host user) cannot reach: a closed directory above root.path
// or, when the root will lie in the task's scratch directory, above the
// state root; and a root or volume to be idmapped on a filesystem that
// cannot be. A user namespace the task joins by path has its mappings
// already and is not checked.
//
// Prepare makes what Check allowed, before the root is made
// (rootfs.Prepare): the way from the state root to the task's scratch
// directory searchable (not readable) by everyone, and a root volume not
// owned by the task's mapped root mounted idmapped in the scratch
// directory; the spec is pointed at it, and a writable root's overlay
// then lies on it.
//
// An idmapped mount takes a user namespace with the task's mappings:
// moor makes one with a helper child, stopped by ptrace before it runs
// any code of its own, then killed. The helper is started through the
// caller's reaper (reaper.Start), which hands its exit back here.
//
// It must not make the rest of the root (overlays, bind mounts, volumes:
// package rootfs), parse APP.json (rootfs builds the spec's mappings from
// its userNamespace), or start any process but the helper.
//
// Concurrency: a Host keeps no state and is safe for concurrent use;
// Prepare of one scratch directory must not run concurrently with
// another Prepare or a rootfs.Cleanup of it.
package userns
