// Package cgroup owns what moor does with cgroups beyond what libcontainer
// does for it: the default absolute path of a task's cgroup, the parent
// cgroups moor had to create for it (and so removes again), a delegated
// task's tree (its limits on its cgroup, the task's own cgroup below it
// without limits and, in a user namespace, owned by the task's root;
// thawing, listing and removing the tree with the cgroups the task made),
// reading a task's OOM kills, and turning cgroup statistics into runc's
// events stats. It works on cgroup v1, hybrid and v2 hosts.
//
// It imports github.com/moby/sys/mountinfo (the host's cgroup hierarchies,
// from the mount table), github.com/opencontainers/cgroups and its manager
// (a cgroup's leaf directories on every hierarchy; the statistics types)
// and github.com/opencontainers/runc/types (the events stats). So it must
// not be imported by what the lean anchor links (devicemodel and its
// backends, anchor, reaper); the CPU-list parser they need is cpulist.
//
// Readers take the hierarchy mount points as arguments so tests can point
// them at temporary directories. It must not hard-code the caller's own
// cgroup: every path it makes is absolute.
//
// Concurrency: functions are safe for concurrent use; they hold no state.
package cgroup
