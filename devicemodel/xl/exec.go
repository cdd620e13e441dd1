package xl

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// Exec runs the xl binary it names as a plain child process, waited for
// by os/exec: the runner of a process that has no reaper of its own (the
// poststop hook). The anchor, whose reaper is the only waiter for its
// children, runs xl under that reaper instead.
type Exec string

// Run runs xl with args and returns its standard output; xl's failure is
// an *ExitError.
func (x Exec) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, string(x), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return out, NewExitError(args, ws, []byte(stderr.String()))
		}
	}
	if err != nil {
		return out, fmt.Errorf("xl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
