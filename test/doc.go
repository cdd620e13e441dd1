// Package test holds moor's integration tests. They need root and run for
// real: tasks in new namespaces and cgroups, built from a busybox rootfs
// made at test time from Debian's busybox-static. Without root they fail;
// they are never skipped silently.
//
// TestMain makes the test process a child subreaper's child, so anchors
// that outlive the moor CLI which made them are reaped promptly, and checks
// at the end that no task, cgroup, mount or state file was left behind.
package test
