// Package fake has a lifecycle.Runtime for tests without root: a task's
// anchor is a plain host process that runs the task's args (in no
// namespace and no cgroup), blocked until Exec like libcontainer's, and
// each step can be made to fail. Its containers live in memory, so only
// the process that made them can load them.
//
// Concurrency: a Runtime and its containers are safe for concurrent use.
package fake
