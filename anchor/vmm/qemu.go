package vmm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
	"github.com/lf-edge/moor/reaper"
)

// qemuBackend runs qemu as the anchor's child and talks QMP to it: the
// executor monitor for commands, the listener monitor for events.
type qemuBackend struct {
	o      Options
	reaper *reaper.Reaper
	events chan<- event
	paths  qemu.Paths

	mu     sync.Mutex
	proc   *os.Process
	mon    *qemu.Monitor
	exited chan struct{}

	app *appChannel // a container app's ports, nil for other VMs
}

func newQemu(o Options, r *reaper.Reaper, events chan<- event) *qemuBackend {
	return &qemuBackend{o: o, reaper: r, events: events, paths: qemu.PathsIn(o.Dir), exited: make(chan struct{})}
}

func (q *qemuBackend) pid() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.proc == nil {
		return 0
	}
	return q.proc.Pid
}

// start: stale files out, qemu in (-S: vCPUs stopped), both monitors up,
// taps into their bridges, then cont.
func (q *qemuBackend) start(ctx context.Context) error {
	if err := removeStale(q.paths.Stale()...); err != nil {
		return err
	}
	if q.app != nil {
		if err := q.app.listen(q.paths); err != nil {
			return err
		}
	}
	if err := os.WriteFile(q.paths.Config, qemu.ReadConfig(q.o.VM, q.paths), 0o644); err != nil {
		return fmt.Errorf("write qemu config: %w", err)
	}
	bin := q.o.DeviceModel
	if bin == "" {
		bin = qemu.BinaryFor(q.o.VM.Arch)
	}
	argv := qemu.Argv(q.o.VM, bin, q.paths)
	path, err := exec.LookPath(bin)
	if err != nil {
		return fmt.Errorf("find qemu: %w", err)
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: q.o.Dir, Stdout: os.Stdout, Stderr: os.Stderr}
	q.o.Logger.Info("starting qemu", "argv", argv)
	err = q.reaper.Start(cmd, func(r reaper.Reaped) {
		close(q.exited)
		q.events <- event{gone: true, clean: r.Status.Exited() && r.Status.ExitStatus() == 0,
			state: devicemodel.GuestShutdown, reason: describe("qemu", r)}
	})
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.proc = cmd.Process
	q.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-q.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	listener, err := qemu.Dial(ctx, q.paths.Listener)
	if err != nil {
		return err
	}
	go q.watch(listener)
	mon, err := qemu.Dial(ctx, q.paths.QMP)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.mon = mon
	q.mu.Unlock()
	if q.app != nil { // qemu connected them as it started, before its monitor was up
		if err := q.app.accept(ctx, os.Stdout, os.Stderr); err != nil {
			return err
		}
	}
	if err := attachTaps(q.o.VM); err != nil {
		return err
	}
	if err := mon.Cont(ctx); err != nil {
		return err
	}
	st, err := mon.Status(ctx)
	if err != nil {
		return err
	}
	if g := qemu.GuestState(st); g != devicemodel.GuestRunning {
		return fmt.Errorf("continue guest: qemu run state %s", st)
	}
	q.events <- event{state: devicemodel.GuestRunning}
	return nil
}

// watch turns the listener monitor's events into run states until qemu
// closes it.
func (q *qemuBackend) watch(listener *qemu.Monitor) {
	defer listener.Close()
	for ev := range listener.Events() {
		q.o.Logger.Debug("qmp event", "event", ev.Event, "data", ev.Data)
		switch ev.Event {
		case "SHUTDOWN":
			reason, _ := ev.Data["reason"].(string)
			q.events <- event{state: devicemodel.GuestShutdown, reason: reason}
		case "RESUME":
			q.events <- event{state: devicemodel.GuestRunning}
		case "STOP":
			q.events <- q.queryState()
		case "GUEST_PANICKED":
			q.events <- event{state: devicemodel.GuestCrashed, reason: "guest-panicked"}
		}
	}
}

// queryState asks qemu why it stopped: a pause, a shutdown or a failure.
func (q *qemuBackend) queryState() event {
	mon := q.monitor()
	if mon == nil {
		return event{state: devicemodel.GuestPaused}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	st, err := mon.Status(ctx)
	if err != nil {
		return event{state: devicemodel.GuestPaused}
	}
	g := qemu.GuestState(st)
	if g == devicemodel.GuestCrashed {
		return event{state: g, reason: st}
	}
	return event{state: g}
}

func (q *qemuBackend) monitor() *qemu.Monitor {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mon
}

var errNoMonitor = errors.New("qmp is not connected")

func (q *qemuBackend) withMonitor(f func(*qemu.Monitor) error) error {
	mon := q.monitor()
	if mon == nil {
		return errNoMonitor
	}
	return f(mon)
}

func (q *qemuBackend) powerdown(ctx context.Context) error {
	return q.withMonitor(func(m *qemu.Monitor) error { return m.SystemPowerdown(ctx) })
}

func (q *qemuBackend) pause(ctx context.Context) error {
	return q.withMonitor(func(m *qemu.Monitor) error { return m.Stop(ctx) })
}

func (q *qemuBackend) resume(ctx context.Context) error {
	return q.withMonitor(func(m *qemu.Monitor) error { return m.Cont(ctx) })
}

// stop quits qemu; without a monitor it is terminated.
func (q *qemuBackend) stop(ctx context.Context) error {
	err := q.withMonitor(func(m *qemu.Monitor) error { return m.Quit(ctx) })
	if err != nil {
		q.signal(unix.SIGTERM)
	}
	return err
}

func (q *qemuBackend) kill() { q.signal(unix.SIGKILL) }

// signal signals qemu unless it has been reaped: its PID is ours until then.
func (q *qemuBackend) signal(sig unix.Signal) {
	select {
	case <-q.exited:
		return
	default:
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.proc != nil {
		_ = q.proc.Signal(sig)
	}
}
