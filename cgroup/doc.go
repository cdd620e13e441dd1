// Package cgroup owns what moor does with cgroups beyond what libcontainer
// does for it: the default absolute path of a task's cgroup, the parent
// cgroups moor had to create for it (and so removes again), and reading a
// task's OOM kills. It works on cgroup v1, hybrid and v2 hosts through
// github.com/opencontainers/cgroups and the host's mount table.
//
// Readers take the hierarchy mount points as arguments so tests can point
// them at temporary directories. It must not hard-code the caller's own
// cgroup: every path it makes is absolute.
//
// Concurrency: functions are safe for concurrent use; they hold no state.
package cgroup
