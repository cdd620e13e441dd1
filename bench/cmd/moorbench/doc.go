// Command moorbench measures moor beside runc and crun on one machine, in
// one run (runc twice: Debian's, and runc_same_lib, built from the
// libcontainer release moor links, the floor moor's own cost sits on): CLI `run` of /bin/true, a create/start/kill/delete lifecycle,
// the supervisor library's in-process start, the supervisor's memory and
// threads while it holds 1, 10 and 100 tasks, a hypervisor task's anchor
// RSS, 100 concurrent starts, and `ctr run --rm` of /bin/true through moor
// and through runc under a private containerd (the containerd row); trees
// of 20 and 100 services brought up by moor supervise and by containerd
// with ctr (tree20, tree100: time and resident memory); and moor as a machine's init under
// qemu TCG (boot to every service running, moor's RSS as PID 1). It prints
// a table and, as its last line, one JSON object.
//
// It runs as root and as three processes: the top one is a subreaper that
// reaps every orphaned task process; its child, the worker, lives in a
// private mount namespace whose cgroup root holds only the v1 hierarchies
// (crun 1.8 refuses a hybrid host) and drives the four CLIs, interleaved
// round by round so machine drift hits all alike; the in-process figures
// come from a third process that embeds the supervisor library and is the
// only reaper of its own tasks. Every task on the host has its own PID
// namespace and a cgroup under /moor-bench; state roots live in a
// temporary directory; all of it is removed at the end. The machine's
// tasks run inside its qemu guest.
//
// It must not assert anything about time: it measures and reports.
//
// Concurrency: each mode is single-threaded in its logic except the
// concurrent-start phase, whose goroutines share only the Supervisor (safe
// for concurrent use) and their own result slots.
package main
