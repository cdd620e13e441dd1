package vmm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/reaper"
)

// Options configure one run of the anchor.
type Options struct {
	VM  *devicemodel.VM // as the task sees it
	Dir string          // the run directory
	// Grace is the wait between the powerdown and the hard stop.
	Grace time.Duration
	// DeviceModel is qemu's or xl's path; empty looks it up in PATH.
	DeviceModel string
	// Poll is how often xl list is asked for the domain's state.
	Poll time.Duration
	// StartTimeout bounds the device model's start (QMP up, domain made).
	StartTimeout time.Duration
	Logger       *slog.Logger
	// Signals, when set, is where Run takes its signals from instead of
	// the process's own (os/signal): a test feeds them through it.
	Signals <-chan os.Signal
	// Reaper, when set, is the process's one reaper and stays the
	// caller's: Run neither becomes a subreaper nor makes a reaper of its
	// own, and does not close it.
	Reaper *reaper.Reaper

	// newBackend makes the device model; newDeviceModel (qemu or xl) when
	// nil. Unit tests pass a fake.
	newBackend func(o Options, rp *reaper.Reaper, events chan<- event, app *appChannel) backend
	// after is the clock of the grace and the kill timers; time.After
	// when nil.
	after func(time.Duration) <-chan time.Time
}

// event is what a backend reports to the loop.
type event struct {
	state  devicemodel.GuestState
	reason string
	// gone means the device model has exited (qemu) or the domain is gone
	// (xl); reason says how.
	gone bool
	// clean means it went as asked: qemu exited 0, or the domain vanished.
	clean bool
	// msg is a message of a container app's guest init.
	msg *devicemodel.Message
}

// backend is one device model, qemu or xl.
type backend interface {
	// start runs the device model and lets the guest run; events follow
	// on the channel it was made with.
	start(ctx context.Context) error
	pid() int
	powerdown(ctx context.Context) error
	stop(ctx context.Context) error // hard stop: quit / destroy
	kill()                          // last resort once stop did not end it
	pause(ctx context.Context) error
	resume(ctx context.Context) error
}

// cmdTimeout bounds each command to the device model.
const cmdTimeout = 5 * time.Second

// killAfter is how long a hard stop may take before the device model is
// killed.
const killAfter = 5 * time.Second

// Run is the anchor: it runs the VM until it ends and says how it ended.
func Run(ctx context.Context, o Options) (devicemodel.Outcome, error) {
	out := devicemodel.Outcome{App: o.VM != nil && o.VM.App}
	if err := o.defaults(); err != nil {
		return out, err
	}
	rp, release, err := o.reaper()
	if err != nil {
		return out, err
	}
	defer release()
	sigs, stop := o.signals()
	defer stop()

	events := make(chan event, 16)
	var app *appChannel
	if o.VM.App && o.VM.IsQemu() {
		app = &appChannel{log: o.Logger, events: events}
	}
	b := o.newBackend(o, rp, events, app)
	l := &loop{o: o, b: b, app: app, state: devicemodel.RunState{State: devicemodel.GuestStarting, Hypervisor: o.VM.Hypervisor}}
	if err := removeStale(filepath.Join(o.Dir, devicemodel.RunStateFile)); err != nil {
		return out, err
	}
	l.publish()
	startCtx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	err = b.start(startCtx)
	cancel()
	if err != nil {
		l.state.DeviceModelPID = b.pid()
		reason := err.Error()
		if ev, ok := l.killStarted(events); ok {
			reason = ev.reason + ": " + reason
		}
		l.end(devicemodel.EndCrashed, reason)
		out.End = devicemodel.EndCrashed
		return out, fmt.Errorf("start device model: %w", err)
	}
	l.state.DeviceModelPID = b.pid()
	o.Logger.Info("guest started", "name", o.VM.Name, "hypervisor", o.VM.Hypervisor,
		"pid", b.pid(), "anchorRssKiB", selfRSSKiB())
	out.End = l.run(ctx, sigs, events)
	if app != nil {
		app.drain()
	}
	out.AppExit = l.state.AppExit
	return out, nil
}

// reaper is the process's one reaper: the caller's, or Run's own once the
// process is a subreaper; release closes Run's own.
func (o *Options) reaper() (rp *reaper.Reaper, release func(), err error) {
	if o.Reaper != nil {
		return o.Reaper, func() {}, nil
	}
	return reaper.Own(func(r reaper.Reaped) { o.Logger.Debug("reaped", "pid", r.PID, "code", r.Code()) })
}

// signals are the signals Run handles: the caller's, or the process's own
// until stop.
func (o *Options) signals() (sigs <-chan os.Signal, stop func()) {
	if o.Signals != nil {
		return o.Signals, func() {}
	}
	own := make(chan os.Signal, 8)
	signal.Notify(own, unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2)
	if o.VM.App {
		signal.Notify(own, appSignals...)
		// The app's output goes to the anchor's stdout and stderr: a
		// write to a pipe whose reader went must fail, not kill the
		// anchor (Go's default for SIGPIPE on fds 1 and 2).
		signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
	}
	return own, func() { signal.Stop(own) }
}

// newDeviceModel is the device model of o.VM: qemu, with a container
// app's ports when app is set, or xl.
func newDeviceModel(o Options, rp *reaper.Reaper, events chan<- event, app *appChannel) backend {
	if o.VM.IsQemu() {
		q := newQemu(o, rp, events)
		q.app = app
		return q
	}
	return newXL(o, rp, events)
}

// killStarted kills what a failed start left of the device model and, when
// a process had started, waits briefly for its exit, for the reason it
// gives.
func (l *loop) killStarted(events <-chan event) (event, bool) {
	started := l.b.pid() != 0
	l.b.kill()
	if !started {
		return event{}, false
	}
	timeout := l.o.after(killAfter)
	for {
		select {
		case ev := <-events:
			if ev.gone {
				return ev, true
			}
		case <-timeout:
			return event{}, false
		}
	}
}

func (o *Options) defaults() error {
	if o.VM == nil || o.Dir == "" {
		return errors.New("run anchor: a VM and a run directory are needed")
	}
	if o.Grace <= 0 {
		o.Grace = devicemodel.DefaultGrace
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.newBackend == nil {
		o.newBackend = newDeviceModel
	}
	if o.after == nil {
		o.after = time.After
	}
	return nil
}

// loop is the anchor's one goroutine of decisions.
type loop struct {
	o     Options
	b     backend
	state devicemodel.RunState

	stopping bool // a powerdown was asked for
	ending   devicemodel.End
	reason   string

	// app is a container app's channel, nil for other VMs; appError is
	// what its guest init reported failing.
	app      *appChannel
	appError string

	// grace fires when the guest has had its time to power down; kill
	// when a hard stop has had its time to end the device model.
	grace, kill <-chan time.Time
}

func (l *loop) publish() {
	l.state.AnchorRSSKiB = selfRSSKiB()
	l.state.Updated = time.Now().UTC()
	if err := devicemodel.WriteRunState(l.o.Dir, l.state); err != nil {
		l.o.Logger.Warn("publish run state", "err", err)
	}
	trimResident() // after a change of state the anchor goes quiet
}

func (l *loop) set(st devicemodel.GuestState, reason string) {
	if l.state.State == st && l.state.Reason == reason {
		return
	}
	l.o.Logger.Info("guest run state", "state", st, "reason", reason)
	l.state.State, l.state.Reason = st, reason
	l.publish()
}

func (l *loop) end(e devicemodel.End, reason string) {
	l.state.End = e
	st := devicemodel.GuestShutdown
	if e == devicemodel.EndCrashed {
		st = devicemodel.GuestCrashed
	}
	l.state.State, l.state.Reason = st, reason
	l.publish()
	l.o.Logger.Info("guest ended", "end", e, "reason", reason)
}

// run handles signals and events until the device model is gone.
func (l *loop) run(ctx context.Context, sigs <-chan os.Signal, events <-chan event) devicemodel.End {
	for {
		select {
		case sig := <-sigs:
			l.signal(ctx, sig.(unix.Signal))
		case ev := <-events:
			if ev.msg != nil {
				l.onMessage(*ev.msg)
				continue
			}
			if ev.gone {
				e, reason := l.verdict(ev)
				l.end(e, reason)
				return e
			}
			if l.ending != "" {
				continue // the guest is on its way out: only its end counts
			}
			l.set(ev.state, ev.reason)
			if ev.state == devicemodel.GuestShutdown || ev.state == devicemodel.GuestCrashed {
				e := devicemodel.EndPoweroff
				if ev.state == devicemodel.GuestCrashed {
					e = devicemodel.EndCrashed
				}
				l.hardStop(ctx, e, ev.reason)
			}
		case <-l.grace:
			l.grace = nil
			if l.ending == "" {
				l.o.Logger.Warn("guest ignored the powerdown: stopping it", "grace", l.o.Grace)
				l.hardStop(ctx, devicemodel.EndForced, "guest ignored the powerdown for "+l.o.Grace.String())
			}
		case <-l.kill:
			l.kill = nil
			l.o.Logger.Warn("device model outlived its stop: killing it", "pid", l.b.pid())
			l.b.kill()
		}
	}
}

// verdict says how the task ends once the device model is gone.
func (l *loop) verdict(ev event) (devicemodel.End, string) {
	if l.ending != "" {
		return l.ending, l.reason
	}
	if !l.o.VM.IsQemu() && !l.stopping {
		// A Xen domain that vanishes by itself was powered off from
		// inside: xl destroys a domain that shuts down.
		return devicemodel.EndPoweroff, ev.reason
	}
	if l.stopping && ev.clean {
		return devicemodel.EndPoweroff, ev.reason
	}
	return devicemodel.EndCrashed, ev.reason
}

// appSignals are the signals an app VM's anchor passes on to the app
// beside SIGTERM and SIGINT.
var appSignals = []os.Signal{unix.SIGHUP, unix.SIGQUIT}

// toApp passes a signal on to a container app through its guest init.
func (l *loop) toApp(sig unix.Signal) {
	if err := l.app.send(devicemodel.Message{Kind: devicemodel.MsgSignal, Signal: int(sig)}); err != nil {
		l.o.Logger.Warn("signal app", "err", err)
	}
}

// hardStop ends the guest as e, for reason: the device model is asked to
// quit (xl to destroy the domain), and killed after killAfter, or at once
// when it cannot be asked.
func (l *loop) hardStop(ctx context.Context, e devicemodel.End, reason string) {
	l.ending, l.reason = e, reason
	cctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	if err := l.b.stop(cctx); err != nil {
		l.o.Logger.Warn("hard stop failed: killing the device model", "err", err, "pid", l.b.pid())
		l.b.kill()
		return
	}
	l.kill = l.o.after(killAfter)
}

func (l *loop) signal(ctx context.Context, sig unix.Signal) {
	cctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	l.o.Logger.Info("signal", "signal", unix.SignalName(sig))
	switch sig {
	case unix.SIGHUP, unix.SIGQUIT: // only an app VM's anchor listens
		l.toApp(sig)
	case unix.SIGTERM, unix.SIGINT:
		if l.ending != "" {
			return
		}
		if l.app != nil {
			l.toApp(sig)
		} else if err := l.b.powerdown(cctx); err != nil {
			// A guest that cannot be asked to power down gets no grace.
			l.o.Logger.Warn("powerdown failed: stopping the guest", "err", err)
			l.hardStop(ctx, devicemodel.EndForced, "powerdown failed: "+err.Error())
			return
		}
		if !l.stopping {
			l.stopping = true
			l.grace = l.o.after(l.o.Grace)
		}
	case unix.SIGUSR1:
		if err := l.b.pause(cctx); err != nil {
			l.o.Logger.Warn("pause guest", "err", err)
		}
	case unix.SIGUSR2:
		if err := l.b.resume(cctx); err != nil {
			l.o.Logger.Warn("resume guest", "err", err)
		}
	}
}
