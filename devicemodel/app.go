package devicemodel

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A container app inside a VM talks to its anchor over three virtio-serial
// ports, found in the guest by name under /sys/class/virtio-ports. On the
// host side each is a unix socket in the run directory that the anchor
// listens on and qemu connects to when it starts, so nothing the guest
// writes is lost before the anchor reads.
const (
	// PortControl carries the control protocol, one message a line.
	PortControl = "org.lfedge.moor.control"
	// PortStdout and PortStderr carry the app's output, as it is.
	PortStdout = "org.lfedge.moor.stdout"
	PortStderr = "org.lfedge.moor.stderr"
)

// Kind is the first word of a control message.
//
// From the guest init to the anchor:
//
//	started <pid>      the app runs, as the guest's process <pid>
//	exit code <n>      the app exited with status n
//	exit signal <n>    the app was killed by signal n
//	error <text>       the guest init failed (an exit follows)
//
// From the anchor to the guest init:
//
//	signal <n>         send signal n to the app
//	ack                the exit is recorded: the guest may power off
type Kind string

const (
	MsgStarted Kind = "started"
	MsgExit    Kind = "exit"
	MsgError   Kind = "error"
	MsgSignal  Kind = "signal"
	MsgAck     Kind = "ack"
)

// ErrBadMessage is returned for a control line that is not a message.
var ErrBadMessage = errors.New("bad control message")

// Message is one line of the control protocol.
type Message struct {
	Kind   Kind
	PID    int    // started
	Code   int    // exit code
	Signal int    // signal; exit signal (then Code is 0)
	Text   string // error
}

// String is the message's line, without its newline.
func (m Message) String() string {
	switch m.Kind {
	case MsgStarted:
		return fmt.Sprintf("started %d", m.PID)
	case MsgExit:
		if m.Signal != 0 {
			return fmt.Sprintf("exit signal %d", m.Signal)
		}
		return fmt.Sprintf("exit code %d", m.Code)
	case MsgError:
		return "error " + strings.ReplaceAll(m.Text, "\n", " ")
	case MsgSignal:
		return fmt.Sprintf("signal %d", m.Signal)
	}
	return string(m.Kind)
}

// ParseMessage reads one line of the control protocol.
func ParseMessage(line string) (Message, error) {
	line = strings.TrimRight(line, "\r\n")
	word, rest, _ := strings.Cut(line, " ")
	bad := fmt.Errorf("%w: %q", ErrBadMessage, line)
	num := func(s string, max int) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 0 && n <= max
	}
	m := Message{Kind: Kind(word)}
	var ok bool
	switch m.Kind {
	case MsgStarted:
		m.PID, ok = num(rest, 1<<22)
	case MsgSignal:
		m.Signal, ok = num(rest, 64)
		ok = ok && m.Signal > 0
	case MsgExit:
		how, n, _ := strings.Cut(rest, " ")
		switch how {
		case "code":
			m.Code, ok = num(n, 255)
		case "signal":
			m.Signal, ok = num(n, 64)
			ok = ok && m.Signal > 0
		}
	case MsgError:
		m.Text, ok = rest, true
	case MsgAck:
		ok = rest == ""
	}
	if !ok {
		return Message{}, bad
	}
	return m, nil
}

// AppExit is how the app of a container app VM ended, as its guest init
// reported it.
type AppExit struct {
	// Code is the app's exit status, 128 + the signal's number when a
	// signal killed it: what the anchor exits with.
	Code int `json:"code"`
	// Signal names the signal that killed the app ("SIGTERM").
	Signal string `json:"signal,omitempty"`
	// Error is the guest init's own failure, when there was one.
	Error string `json:"error,omitempty"`
}

// ExitOf is the app's exit an exit message reports.
func ExitOf(m Message) *AppExit {
	if m.Signal != 0 {
		return &AppExit{Code: 128 + m.Signal, Signal: unix.SignalName(unix.Signal(m.Signal))}
	}
	return &AppExit{Code: m.Code}
}

// The anchor's exit statuses of a container app VM whose app did not
// report its exit.
const (
	// ExitAppForced: the guest was stopped hard (as a SIGKILL would).
	ExitAppForced = 128 + 9
	// ExitAppLost: the guest ended, crashed or never started without
	// reporting the app's exit.
	ExitAppLost = 255
)

// Outcome is how a hypervisor task ended: the guest's end and, for a
// container app VM, the app's exit.
type Outcome struct {
	End End
	// App says the VM ran a container app; AppExit is its exit, nil when
	// the guest did not report one.
	App     bool
	AppExit *AppExit
}

// ExitCode is the anchor's exit status: the app's for a container app VM
// (ExitAppForced or ExitAppLost when it reported none), else ExitCode of
// the end.
func (o Outcome) ExitCode() int {
	if !o.App {
		return ExitCode(o.End)
	}
	switch {
	case o.AppExit != nil:
		return o.AppExit.Code
	case o.End == EndForced:
		return ExitAppForced
	}
	return ExitAppLost
}
