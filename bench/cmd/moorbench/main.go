package main

import (
	"fmt"
	"os"

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

func main() {
	if len(os.Args) > 1 && os.Args[1] == modeInit {
		libcontainer.Init() // never returns
	}
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == modeWorker:
		err = runWorker(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == modeInproc:
		err = runInproc(os.Args[2:])
	default:
		var code int
		code, err = runTop(os.Args[1:])
		if err == nil {
			os.Exit(code)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "moorbench:", err)
		os.Exit(1)
	}
}
