// Package lifecycle owns the task lifecycle: the typed task states and the
// one transition function between them, the on-disk state store, and the
// operations a manager embeds (Create, Start, Signal, Stop, Delete, State,
// List, Exec, Pause, Resume, Update, Stats, Events). It is the library EVE's
// task manager uses; the init system (package supervisor) uses only its
// public API.
//
// A Tasks holds no task in memory that the state store does not also
// hold: any process may load a task from the store and act on it, and the
// process that created a task may exit. Tasks are addressed by ID or by the
// anchor's host PID (an ID wins when both match).
//
// It must not know the init system, touch cgroupfs beyond the cgroup
// package, or build a device model's argv itself.
//
// Concurrency: a Tasks is safe for concurrent use. With a reaper.Reaper
// in its Options it records the exits of the anchors it starts; at most one
// Reaper may exist per process, and once it exists nothing else may wait
// for children.
package lifecycle
