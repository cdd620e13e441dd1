// Command moor-anchor is the lean anchor of a hypervisor task: PID 1 of the
// task, it runs qemu or drives xl for the VM in its run directory (see
// anchor/vmm). It does what "moor anchor" does, in a small static binary
// that links neither libcontainer nor moor's command line, so that a quiet
// anchor holds little memory. "moor vm spec" makes it the task's process
// when it sits beside moor.
package main

import (
	"context"
	"errors"
	"flag"
	"os"

	"github.com/lf-edge/moor/anchor/vmm"
)

func main() {
	out, err := vmm.Main(context.Background(), "moor-anchor", os.Args[1:], os.Stderr, false)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	os.Exit(out.ExitCode())
}
