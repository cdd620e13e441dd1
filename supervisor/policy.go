package supervisor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
)

// Annotations the init-style supervisor reads from a bundle's spec.
const (
	// RestartAnnotation: "no" (default), "on-failure[:N]" or "always".
	RestartAnnotation = "moor.restart"
	// StopTimeoutAnnotation: how long a service gets between SIGTERM and
	// SIGKILL at shutdown, as a Go duration ("10s") or seconds ("10").
	StopTimeoutAnnotation = "moor.stop-timeout"
)

// DefaultStopTimeout is the grace a service gets when its spec says none.
const DefaultStopTimeout = 10 * time.Second

// RestartMode says when a service is restarted.
type RestartMode int

const (
	RestartNo RestartMode = iota
	RestartOnFailure
	RestartAlways
)

// Policy is a service's restart policy.
type Policy struct {
	Mode RestartMode
	Max  int // on-failure only: at most this many restarts; 0 means no cap
}

// ParsePolicy reads the moor.restart annotation.
func ParsePolicy(v string) (Policy, error) {
	mode, max, hasMax := strings.Cut(v, ":")
	switch mode {
	case "", "no":
		if hasMax {
			return Policy{}, fmt.Errorf("%s %q: only on-failure takes a count", RestartAnnotation, v)
		}
		return Policy{Mode: RestartNo}, nil
	case "always":
		if hasMax {
			return Policy{}, fmt.Errorf("%s %q: only on-failure takes a count", RestartAnnotation, v)
		}
		return Policy{Mode: RestartAlways}, nil
	case "on-failure":
		p := Policy{Mode: RestartOnFailure}
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 1 {
				return Policy{}, fmt.Errorf("%s %q: the count must be a positive number", RestartAnnotation, v)
			}
			p.Max = n
		}
		return p, nil
	}
	return Policy{}, fmt.Errorf("%s %q: want no, on-failure[:N] or always", RestartAnnotation, v)
}

// ParseStopTimeout reads the moor.stop-timeout annotation.
func ParseStopTimeout(v string) (time.Duration, error) {
	if v == "" {
		return DefaultStopTimeout, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration such as 10s", StopTimeoutAnnotation, v)
	}
	return d, nil
}

// Verdict is what to do after a service's anchor exited.
type Verdict int

const (
	Keep     Verdict = iota // leave it stopped
	Restart                 // start it again
	Poweroff                // the guest powered off: leave it stopped for good
)

// Decide applies the policy to an exit. restarts is how many times the
// service was restarted already. A guest-initiated reboot (the kernel
// kills a PID-namespace init with SIGHUP) restarts whatever the policy; a
// poweroff (SIGINT) stops for good whatever the policy.
func (p Policy) Decide(ex *lifecycle.Exit, restarts int) Verdict {
	switch ex.Signal {
	case unix.SignalName(unix.SIGHUP):
		return Restart
	case unix.SignalName(unix.SIGINT):
		return Poweroff
	}
	switch p.Mode {
	case RestartAlways:
		return Restart
	case RestartOnFailure:
		if ex.Code != 0 && (p.Max == 0 || restarts < p.Max) {
			return Restart
		}
	}
	return Keep
}

// Backoff bounds for restarts: the first restart waits BackoffBase, each
// quick failure after it twice as long, up to BackoffCap. A run that lasted
// StableAfter resets the count.
const (
	BackoffBase = 100 * time.Millisecond
	BackoffCap  = 30 * time.Second
	StableAfter = 10 * time.Second
)

// Backoff is the wait before the restart that follows failures quick
// failures in a row.
func Backoff(failures int) time.Duration {
	d := BackoffBase
	for i := 0; i < failures && d < BackoffCap; i++ {
		d *= 2
	}
	return min(d, BackoffCap)
}
