package main

import (
	"fmt"
	"os"

	"github.com/lf-edge/moor/internal/taskmain"
)

// Modes of this binary, as os.Args[1].
const (
	modeWorker  = "worker" // drives the benchmarks, in a private mount namespace
	modeInproc  = "inproc" // embeds the supervisor library
	flagMoorBin = "--moor" // path of the moor binary under test
)

func main() { taskmain.Main(func() int { return run(os.Args) }) }

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
