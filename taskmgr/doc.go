// Package taskmgr is an example of the task manager EVE's domainmgr (in
// pillar) would be, written against moor's lifecycle library: it runs
// the apps of a directory as tasks of one task namespace and keeps them
// running.
//
// Each subdirectory <apps>/<name>/ is one app: a root volume (rootfs/
// with config.json or image-config.json) and APP.json, the app's own
// settings, put together as `moor spec --seed DIR --override APP.json`
// does (rootfs.Build) and held to the minimum viable spec. The task's ID
// is the name; its cgroup <cgroup parent>/<name>, an absolute path.
//
// Run creates and starts every app; an anchor that exits (a crash, a
// kill, an app that ended) is started again after a backoff (100 ms
// doubling to 30 s, reset by a run of 10 s: supervisor.Backoff) by
// lifecycle's Start of the stopped task. A Manager that finds tasks of
// its namespace (its process was killed and started again) adopts the
// running apps whose spec is unchanged, through their anchors' pidfds,
// instead of starting them twice, restarts the stopped ones, and stops
// and deletes every other task there. The status file (name, PID,
// status, restarts, last exit, error of every app) is rewritten
// atomically after every change. SIGTERM or SIGINT stops every app (its
// stop signal, its grace: annotation moor.stop-timeout, 10 s by
// default), deletes the tasks, removes the status file and returns;
// SIGKILL of the Manager leaves the apps running, for the next one to
// adopt.
//
// It must not touch cgroupfs, libcontainer or the state store but
// through the lifecycle's public API, nor parse an app's settings itself
// (package rootfs does).
//
// Concurrency: a Manager's work runs on the goroutine that calls Run.
// The reaper's goroutine (the exits of the anchors it started, exact),
// the pidfd watches of adopted anchors (parked in Go's poller, not on
// threads: their exits are "unknown" but for OOM kills) and the restart
// timers only post work to it, so its thread count does not grow with
// the number of apps. At most one Manager (one reaper) per process.
package taskmgr
