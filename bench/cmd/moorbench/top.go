package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/reaper"
)

// runTop becomes a subreaper, runs the worker in a private mount namespace
// and reaps every orphan (task processes whose CLI exited) until the worker
// exits; it returns the worker's exit status.
func runTop(args []string) (int, error) {
	if os.Geteuid() != 0 {
		return 0, errors.New("needs root: it makes namespaces, cgroups and mounts")
	}
	if err := reaper.BecomeSubreaper(); err != nil {
		return 0, err
	}
	signal.Ignore(unix.SIGINT, unix.SIGTERM) // the worker gets them too and cleans up
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.Command(self, append([]string{modeWorker}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Go makes "/" recursively private in the new mount namespace.
	cmd.SysProcAttr = &unix.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}
	rp := reaper.NewReaper() // orphans are reaped and forgotten
	defer rp.Close()
	done := make(chan reaper.Reaped, 1)
	if err := rp.Start(cmd, func(r reaper.Reaped) { done <- r }); err != nil {
		return 0, fmt.Errorf("start worker: %w", err)
	}
	return (<-done).Code(), nil
}
