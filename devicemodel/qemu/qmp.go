package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/lf-edge/moor/devicemodel"
)

// Monitor is one QMP connection to qemu.
type Monitor struct {
	path string
	mon  *qmp.SocketMonitor
}

// Dial connects to the QMP socket at path and negotiates capabilities,
// retrying while qemu has not made the socket yet, until ctx is done.
func Dial(ctx context.Context, path string) (*Monitor, error) {
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for {
		mon, err := qmp.NewSocketMonitor("unix", path, time.Second)
		if err == nil {
			if err = connect(ctx, mon); err == nil {
				return &Monitor{path: path, mon: mon}, nil
			}
			_ = mon.Disconnect()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial qmp %s: %w (last: %w)", path, ctx.Err(), err)
		case <-retry.C:
		}
	}
}

// connect runs the handshake, giving up when ctx is done.
func connect(ctx context.Context, mon *qmp.SocketMonitor) error {
	done := make(chan error, 1)
	go func() { done <- mon.Connect() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = mon.Disconnect()
		<-done
		return ctx.Err()
	}
}

// Close ends the connection.
func (m *Monitor) Close() error { return m.mon.Disconnect() }

// Events streams qemu's events until the connection closes. Call it at
// most once per Monitor.
func (m *Monitor) Events() <-chan qmp.Event {
	ch, _ := m.mon.Events(context.Background()) // never fails on a socket monitor
	return ch
}

// Execute runs one QMP command and returns its "return" value. When ctx
// ends first, the connection is closed: a QMP reply that comes late must
// not be taken for the next command's.
func (m *Monitor) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	cmd, err := json.Marshal(qmp.Command{Execute: command, Args: args})
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := m.mon.Run(cmd)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, r.err)
		}
		var reply struct {
			Return json.RawMessage `json:"return"`
		}
		if err := json.Unmarshal(r.b, &reply); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		return reply.Return, nil
	case <-ctx.Done():
		_ = m.mon.Disconnect()
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
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
