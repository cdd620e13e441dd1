package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"

	"golang.org/x/sys/unix"
)

// runTop becomes a subreaper, runs the worker in a private mount namespace
// and reaps every orphan (task processes whose CLI exited) until the worker
// exits; it returns the worker's exit status.
func runTop(args []string) (int, error) {
	if os.Geteuid() != 0 {
		return 0, errors.New("needs root: it makes namespaces, cgroups and mounts")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("become subreaper: %w", err)
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
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start worker: %w", err)
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for worker: %w", err)
		}
		if pid == cmd.Process.Pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal()), nil
			}
			return ws.ExitStatus(), nil
		}
	}
}
