package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// fakeQMP is a QMP server on a unix socket: it greets, then answers each
// command with the lines reply gives.
type fakeQMP struct {
	path     string
	reply    func(command string) []string
	commands chan string // every command received, in order
}

func newFakeQMP(t *testing.T, reply func(command string) []string) *fakeQMP {
	t.Helper()
	f := &fakeQMP{path: filepath.Join(t.TempDir(), "qmp"), reply: reply, commands: make(chan string, 16)}
	return f
}

// listen makes the socket and serves one connection.
func (f *fakeQMP) listen(t *testing.T) {
	t.Helper()
	l, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte(`{"QMP": {"version": {"qemu": {"major": 8}}, "capabilities": []}}` + "\n"))
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var cmd struct {
				Execute string `json:"execute"`
			}
			if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
				return
			}
			f.commands <- cmd.Execute
			for _, line := range f.reply(cmd.Execute) {
				if _, err := c.Write([]byte(line + "\n")); err != nil {
					return
				}
			}
		}
	}()
}

func standardReplies(command string) []string {
	switch command {
	case "query-status":
		return []string{`{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}`,
			`{"return": {"status": "paused", "running": false}}`}
	case "stop":
		return []string{`{"error": {"class": "GenericError", "desc": "no"}}`}
	case "hang":
		return nil
	}
	return []string{`{"return": {}}`}
}

func dial(t *testing.T, path string) *Monitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMonitorCommands(t *testing.T) {
	f := newFakeQMP(t, standardReplies)
	f.listen(t)
	m := dial(t, f.path)
	if got := <-f.commands; got != "qmp_capabilities" {
		t.Fatalf("first command %q, want qmp_capabilities", got)
	}
	ctx := context.Background()
	if err := m.Cont(ctx); err != nil {
		t.Fatalf("cont: %v", err)
	}
	st, err := m.Status(ctx)
	if err != nil || st != "paused" {
		t.Fatalf("status = %q, %v; want paused past the STOP event", st, err)
	}
	if err := m.Stop(ctx); !errors.Is(err, ErrQMP) {
		t.Fatalf("stop = %v, want ErrQMP", err)
	}
	if err := m.Cont(ctx); err != nil {
		t.Fatalf("cont after an error reply: %v", err)
	}
}

// A command whose reply does not come in time ends with the context's
// error and closes the connection: a late reply is never taken for the
// next command's.
func TestMonitorTimeoutCloses(t *testing.T) {
	f := newFakeQMP(t, standardReplies)
	f.listen(t)
	m := dial(t, f.path)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Execute(ctx, "hang", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang = %v, want DeadlineExceeded", err)
	}
	if err := m.Cont(context.Background()); err == nil {
		t.Fatal("a command after a timed-out one ran on the same connection")
	}
}

// Dial waits for a socket qemu has not made yet.
func TestDialWaitsForSocket(t *testing.T) {
	f := newFakeQMP(t, standardReplies)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, err := Dial(ctx, f.path)
		if err == nil {
			m.Close()
		}
		done <- err
	}()
	f.listen(t)
	if err := <-done; err != nil {
		t.Fatalf("dial: %v", err)
	}
}

func TestDialGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, filepath.Join(t.TempDir(), "none")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial = %v, want DeadlineExceeded", err)
	}
}

func TestMonitorEvents(t *testing.T) {
	f := newFakeQMP(t, func(command string) []string {
		if command == "qmp_capabilities" {
			return []string{`{"return": {}}`,
				`{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}, "timestamp": {"seconds": 1, "microseconds": 2}}`,
				`{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 3}}`}
		}
		return nil
	})
	f.listen(t)
	m := dial(t, f.path)
	events := m.Events()
	ev := <-events
	if ev.Event != "SHUTDOWN" || ev.Data["reason"] != "guest-shutdown" {
		t.Fatalf("first event %+v, want SHUTDOWN by guest-shutdown", ev)
	}
	if ev = <-events; ev.Event != "RESUME" {
		t.Fatalf("second event %+v, want RESUME", ev)
	}
	m.Close()
	for range events { // closed once the connection is
	}
}
