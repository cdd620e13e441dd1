package main

import (
	"fmt"
	"os"
	"runtime"

	_ "github.com/opencontainers/cgroups/devices" // device rules for the cgroup managers
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // nsexec for the in-process tasks' init
)

// Modes of this binary, as os.Args[1].
const (
	modeInit    = "init"   // libcontainer's init of an in-process task
	modeWorker  = "worker" // drives the benchmarks, in a private mount namespace
	modeInproc  = "inproc" // embeds the supervisor library
	flagMoorBin = "--moor" // path of the moor binary under test
)

// init keeps the main thread to main's goroutine, as in moor, so that
// libcontainer's mount-namespace goroutine never ends on it.
// A task's init (modeInit) is left unlocked, as in moor.
func init() {
	if len(os.Args) > 1 && os.Args[1] == modeInit {
		return
	}
	runtime.LockOSThread()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == modeInit {
		libcontainer.Init() // never returns
	}
	code := make(chan int) // the main thread only waits (init)
	go func() { code <- run(os.Args) }()
	os.Exit(<-code)
}

// run is the benchmark in the mode os.Args[1] names; it returns the exit
// status.
func run(args []string) int {
	var err error
	switch {
	case len(args) > 1 && args[1] == modeWorker:
		err = runWorker(args[2:])
	case len(args) > 1 && args[1] == modeInproc:
		err = runInproc(args[2:])
	default:
		var code int
		if code, err = runTop(args[1:]); err == nil {
			return code
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "moorbench:", err)
		return 1
	}
	return 0
}
