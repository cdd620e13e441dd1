// Package lifecycle owns the task lifecycle: the typed task states and the
// one transition function between them, the on-disk state store, and the
// operations a manager embeds (Create, Start, Signal, Stop, Delete, State,
// List, Exec, Pause, Resume, Update, Stats, Events). It is the library EVE's
// task manager uses; the init system (package supervisor) uses only its
// public API.
//
// Start of a stopped task makes it anew from its saved spec under the
// same name (a new anchor, restarts one more, hooks as for a first start),
// as the task interface of EVE's task proposal has it; StartCreated is the
// OCI runtime's start, of a created task only. RecordOrphan lets the
// process that reaps an anchor it did not start (PID 1, a subreaper)
// record that task's exit, whoever made the task.
//
// A Tasks holds no task in memory that the state store does not also
// hold: any process may load a task from the store and act on it, and the
// process that created a task may exit. Tasks are addressed by ID or by the
// anchor's host PID (an ID wins when both match).
//
// Crash consistency: every change of a task that takes several steps is
// ordered so that a SIGKILL at any point leaves a task that state and list
// show truthfully and that delete finishes, and no name is ever stuck.
// moor's record lives apart from libcontainer's state directory (see
// Store). Create claims the name by making the record (status creating)
// in one rename, then saves the spec, prepares the scratch, notes the
// cgroup parents it will make, creates libcontainer's container, and
// starts the anchor, recording it (status created) before a reaper may
// collect it; a failure undoes these in reverse. Delete records the status
// deleting first, then kills, destroys the container and cgroup (by path
// when libcontainer's state is gone), removes the parents moor made once
// empty (whichever task goes last), the scratch, and the record last. A
// directory libcontainer knows without a record is rebuilt from its state
// (or, unreadable, removed by delete --force). Operations that change a
// task hold its lock (an flock on moor's directory of it) throughout. A
// verb whose change is made (start let the anchor go, pause froze it)
// and that cannot record it succeeds with a warning: the status is read
// from the kernel, so state agrees with it.
//
// The state root is a trust boundary (see Store): nothing beneath it is
// followed through a symlink or removed across a symlink or mount, and a
// record must match its place. A corrupt record (ErrCorrupt) is shown with
// the status Unknown and the reason, refused by every verb but delete
// with force, which acts only on the name's own state (libcontainer's of
// that name, checked to name it), never on what the record names.
//
// Isolation beyond the spec's namespaces is checked with the spec, before
// anything is made, and made on libcontainer's configuration before the
// container: a delegated cgroup (DelegateAnnotation: moor makes the
// task's cgroup with its limits, the task gets a child of it, a cgroup
// namespace and a writable cgroupfs), user namespaces (package userns:
// Check with the spec, Prepare before the root is made) and time
// namespaces (offsets the kernel takes).
//
// It must not know the init system, touch cgroupfs beyond the cgroup
// package, or build a device model's argv itself.
//
// Concurrency: a Tasks is safe for concurrent use. With a reaper.Reaper
// in its Options it records the exits of the anchors it starts; at most one
// Reaper may exist per process, and once it exists nothing else may wait
// for children: hooks and the user-namespace helper are started through
// it (a nil one when there is none), and it is held only across
// libcontainer's own forks (create's anchor, exec).
package lifecycle
