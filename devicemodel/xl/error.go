package xl

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// ExitError is what a Runner returns when xl ran and failed: it exited
// with a non-zero status, or a signal killed it. The Driver decides from
// its fields, never from an error's text.
type ExitError struct {
	Args   []string       // xl's arguments
	Code   int            // the exit status; 0 when a signal killed xl
	Signal syscall.Signal // the signal that killed xl; 0 when it exited
	Stderr string         // what xl wrote to its standard error, trimmed
}

func (e *ExitError) Error() string {
	how := "exit status " + strconv.Itoa(e.Code)
	if e.Signal != 0 {
		how = "signal: " + e.Signal.String()
	}
	return fmt.Sprintf("xl %s: %s: %s", strings.Join(e.Args, " "), how, e.Stderr)
}

// noDomainMessage is what xl writes to its standard error, after the
// name, when it knows no domain by that name: "demo is an invalid domain
// identifier (rc=-6)", with exit status 1.
const noDomainMessage = "is an invalid domain identifier"

// NoDomain reports whether xl failed because it knows no domain of the
// name it was given: it exited non-zero (not killed) and its standard
// error says so.
func (e *ExitError) NoDomain() bool {
	return e.Signal == 0 && e.Code != 0 && strings.Contains(e.Stderr, noDomainMessage)
}

// NewExitError is the ExitError of xl run with args, from its wait status
// and its standard error.
func NewExitError(args []string, ws syscall.WaitStatus, stderr []byte) *ExitError {
	e := &ExitError{Args: args, Stderr: strings.TrimSpace(string(stderr))}
	if ws.Signaled() {
		e.Signal = ws.Signal()
	} else {
		e.Code = ws.ExitStatus()
	}
	return e
}
