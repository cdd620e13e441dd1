package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
)

// ErrQMP is returned for a command qemu answered with an error; the message
// carries qemu's class and description.
var ErrQMP = errors.New("qmp error")

// Event is one QMP event, e.g. STOP or SHUTDOWN with its data.
type Event struct {
	Event string         `json:"event"`
	Data  map[string]any `json:"data,omitempty"`
}

// message is anything qemu sends on a QMP socket: the greeting, a reply or
// an event, one JSON object a line.
type message struct {
	QMP    json.RawMessage `json:"QMP"`
	Event  string          `json:"event"`
	Data   map[string]any  `json:"data"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// Monitor is one QMP connection to qemu. It either runs commands or, once
// Events was called, streams events.
type Monitor struct {
	f   *os.File // a non-blocking unix socket: reads and writes honour deadlines
	dec *json.Decoder

	mu sync.Mutex // one command at a time; its reply is the next non-event
}

// dialRetry is how often Dial tries again while qemu has not made its
// socket yet.
const dialRetry = 20 * time.Millisecond

// Dial connects to the QMP socket at path and negotiates capabilities,
// retrying while qemu has not made the socket yet, until ctx is done.
func Dial(ctx context.Context, path string) (*Monitor, error) {
	retry := time.NewTicker(dialRetry)
	defer retry.Stop()
	for {
		m, err := connect(path)
		if err == nil {
			if err = m.handshake(ctx); err == nil {
				return m, nil
			}
			m.Close()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial qmp %s: %w (last: %w)", path, ctx.Err(), err)
		case <-retry.C:
		}
	}
}

func connect(path string) (*Monitor, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("make socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	return &Monitor{f: f, dec: json.NewDecoder(f)}, nil
}

// handshake reads qemu's greeting and leaves capabilities negotiation mode.
func (m *Monitor) handshake(ctx context.Context) error {
	interrupted, err := m.within(ctx, func() error {
		var greeting message
		if err := m.dec.Decode(&greeting); err != nil {
			return fmt.Errorf("read qmp greeting: %w", err)
		}
		if greeting.QMP == nil {
			return errors.New("read qmp greeting: not a QMP greeting")
		}
		_, err := m.exchange("qmp_capabilities", nil)
		return err
	})
	if interrupted {
		return fmt.Errorf("qmp handshake: %w", ctx.Err())
	}
	return err
}

// within runs f, making the connection's blocked reads and writes fail once
// ctx is done. interrupted says ctx ended before f did: the connection is
// then of no more use.
func (m *Monitor) within(ctx context.Context, f func() error) (interrupted bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = m.f.SetDeadline(time.Unix(1, 0)) })
	err = f()
	return !stop(), err
}

// Close ends the connection.
func (m *Monitor) Close() error { return m.f.Close() }

// Events streams qemu's events until the connection closes, and then
// closes the channel. Call it at most once per Monitor, and run no command
// on it afterwards: the stream reads every message.
func (m *Monitor) Events() <-chan Event {
	ch := make(chan Event, 16)
	go func() {
		defer close(ch)
		for {
			var msg message
			if err := m.dec.Decode(&msg); err != nil {
				return
			}
			if msg.Event != "" {
				ch <- Event{Event: msg.Event, Data: msg.Data}
			}
		}
	}()
	return ch
}

// Execute runs one QMP command and returns its "return" value. When ctx
// ends first, the connection is closed: a QMP reply that comes late must
// not be taken for the next command's.
func (m *Monitor) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ret json.RawMessage
	interrupted, err := m.within(ctx, func() (err error) {
		ret, err = m.exchange(command, args)
		return err
	})
	if interrupted {
		m.Close()
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
	return ret, err
}

// exchange sends one command and reads up to its reply, passing over the
// events that come before it.
func (m *Monitor) exchange(command string, args any) (json.RawMessage, error) {
	b, err := json.Marshal(struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}{command, args})
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	if _, err := m.f.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		var msg message
		if err := m.dec.Decode(&msg); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		switch {
		case msg.Error != nil:
			return nil, fmt.Errorf("qmp %s: %w: %s: %s", command, ErrQMP, msg.Error.Class, msg.Error.Desc)
		case msg.Return != nil:
			return msg.Return, nil
		}
	}
}

// Cont lets the guest's vCPUs run.
func (m *Monitor) Cont(ctx context.Context) error { return m.run(ctx, "cont") }

// Stop pauses the guest's vCPUs.
func (m *Monitor) Stop(ctx context.Context) error { return m.run(ctx, "stop") }

// SystemPowerdown presses the guest's ACPI power button.
func (m *Monitor) SystemPowerdown(ctx context.Context) error {
	return m.run(ctx, "system_powerdown")
}

// Quit ends qemu. Its reply may be lost as qemu exits: a closed
// connection after quit counts as success.
func (m *Monitor) Quit(ctx context.Context) error {
	err := m.run(ctx, "quit")
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (m *Monitor) run(ctx context.Context, command string) error {
	_, err := m.Execute(ctx, command, nil)
	return err
}

// Status is qemu's run state (query-status).
func (m *Monitor) Status(ctx context.Context) (string, error) {
	b, err := m.Execute(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("qmp query-status: %w", err)
	}
	return st.Status, nil
}

// GuestState maps qemu's run state onto the guest's, as EVE does: the
// migration and prelaunch states count as paused; any state qemu enters on
// a failure counts as crashed.
func GuestState(runState string) devicemodel.GuestState {
	switch runState {
	case "running":
		return devicemodel.GuestRunning
	case "paused", "prelaunch", "postmigrate", "finish-migrate", "restore-vm", "save-vm",
		"suspended", "colo", "preconfig", "inmigrate", "debug":
		return devicemodel.GuestPaused
	case "shutdown":
		return devicemodel.GuestShutdown
	}
	return devicemodel.GuestCrashed // internal-error, guest-panicked, io-error, watchdog...
}
