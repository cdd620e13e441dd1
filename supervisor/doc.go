// Package supervisor owns the task lifecycle: the typed task states and the
// one transition function between them, the on-disk state store, the single
// reaper, and the operations a manager embeds (Create, Start, Signal, Stop,
// Delete, State, List, Exec, Pause, Resume).
//
// A Supervisor holds no task in memory that the state store does not also
// hold: any process may load a task from the store and act on it, and the
// process that created a task may exit. Tasks are addressed by ID or by the
// anchor's host PID (an ID wins when both match).
//
// It must not touch cgroupfs or build a device model's argv itself: that is
// the cgroup and devicemodel packages' job.
//
// Concurrency: a Supervisor is safe for concurrent use. Operations on one
// task from different processes are not serialised beyond what the kernel
// and libcontainer's own state give; the store's writes are atomic. At most
// one Reaper may exist per process, and once it exists nothing else may wait
// for children.
package supervisor
