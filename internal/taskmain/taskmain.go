// Package taskmain is the entry of a binary that makes tasks with
// libcontainer in its own process (moor, moor-taskmgr, moorbench): it
// runs a task's init when libcontainer re-executes the binary as one
// (argument "init"), and keeps the main thread out of the tasks' mount
// namespaces otherwise.
//
// libcontainer runs a goroutine per start that locks its thread, joins
// the task's mount namespace and ends without unlocking; were that the
// main thread, Go would park it there for good, pinning the namespace and
// its mounts. So main's goroutine is locked to the main thread here, in
// an init function, which the runtime runs on the main thread, locked:
// by main, the goroutine may already be on another. A task's init is left
// unlocked: it makes no task, and a locked goroutine pays a thread
// handoff at each of its blocking steps.
package taskmain

import (
	"os"
	"os/signal"
	"runtime"

	_ "github.com/opencontainers/cgroups/devices" // device rules for the cgroup managers
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // nsexec: runs before the Go runtime in "<binary> init"
	"golang.org/x/sys/unix"
)

// isInit reports whether the binary runs as a task's init.
func isInit() bool { return len(os.Args) > 1 && os.Args[1] == "init" }

func init() {
	if !isInit() {
		runtime.LockOSThread()
	}
}

// Main runs a task's init, or else run on a goroutine of its own while
// main's keeps the main thread and only waits (working on the locked
// thread itself would cost a thread handoff at every channel operation);
// it exits with run's status. A reader of the output that goes away must
// not kill the binary halfway through a create: a write to the broken
// pipe fails with EPIPE instead. Notify, not Ignore: an ignored signal
// would stay ignored in the tasks' processes.
func Main(run func() int) {
	if isInit() {
		libcontainer.Init() // never returns
	}
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
	code := make(chan int)
	go func() { code <- run() }()
	os.Exit(<-code)
}
