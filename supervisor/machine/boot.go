package machine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/procfs"
	"github.com/lf-edge/moor/reaper"
	"github.com/lf-edge/moor/supervisor"
)

// Options configure moor as a machine's init.
type Options struct {
	// Manager configures the init system; Boot sets its Logger, Signals
	// and Notify, and its Output when Console is set.
	Manager supervisor.ManagerOptions
	// Console sends each task's output to the console, its lines prefixed
	// with the task's name, instead of to files in Manager.Logs.
	Console bool
	// Debug logs debug messages too.
	Debug bool
}

// machine is the state of a machine's init.
type machine struct {
	root    string // "/"; a temporary directory in tests
	sys     sys
	log     *slog.Logger
	cmdline string        // the kernel's command line
	release string        // the kernel's release, which names its module directory
	button  chan struct{} // a power-button press
}

func (m *machine) path(p string) string { return filepath.Join(m.root, p) }

// Step is one step of a machine's setup, in the order they run.
type Step int

const (
	StepSwitchRoot Step = iota
	StepMounts
	StepConsole
	StepCgroups
	StepCtrlAltDel
	StepHostname
	StepLoopback
	StepModules
	StepPowerButton
)

var stepNames = [...]string{"switch-root", "mounts", "console", "cgroups", "ctrl-alt-del", "hostname", "loopback", "modules", "power-button"}

func (s Step) String() string {
	if s >= 0 && int(s) < len(stepNames) {
		return stepNames[s]
	}
	return fmt.Sprintf("step(%d)", int(s))
}

// steps lists the setup in order.
func (m *machine) steps() []func() error {
	return []func() error{
		StepSwitchRoot:  m.switchRoot,
		StepMounts:      m.earlyMounts,
		StepConsole:     func() error { return m.sys.UseConsole(m.path("/dev/console")) },
		StepCgroups:     m.cgroups,
		StepCtrlAltDel:  func() error { return m.sys.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF) },
		StepHostname:    m.hostname,
		StepLoopback:    func() error { return m.sys.LinkUp("lo") },
		StepModules:     m.modules,
		StepPowerButton: m.powerButton,
	}
}

// setup runs every step; a step that fails is logged and the next runs.
func (m *machine) setup() {
	for i, fn := range m.steps() {
		t0 := time.Now()
		if err := fn(); err != nil {
			m.log.Error("machine setup", "step", Step(i).String(), "err", err)
			continue
		}
		m.log.Debug("machine setup", "step", Step(i).String(), "took", time.Since(t0))
	}
}

// DefaultHostname is a machine's name when /etc/hostname gives none.
const DefaultHostname = "moor"

// hostname is the hostname step: /etc/hostname, else DefaultHostname.
func (m *machine) hostname() error {
	name := DefaultHostname
	if b, err := os.ReadFile(m.path("/etc/hostname")); err == nil && strings.TrimSpace(string(b)) != "" {
		name = strings.TrimSpace(string(b))
	}
	return m.sys.Sethostname(name)
}

// Boot is moor as a machine's init: the setup, then the init system over
// the containers tree until a shutdown, then the machine's end. It
// returns only ErrNotInit, having changed nothing, when the process is
// not PID 1 of the initial PID namespace; otherwise it never returns. A
// failure of the init system (an error or a panic of its loop) is logged
// and powers the machine off.
func Boot(opts Options) error {
	ok, err := checkInit()
	if !ok {
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotInit, err)
		}
		return ErrNotInit
	}
	con := supervisor.NewConsole(os.Stderr) // the kernel's /dev/console, and after StepConsole devtmpfs's
	level := slog.LevelInfo
	if opts.Debug {
		level = slog.LevelDebug
	}
	base := slog.New(slog.NewTextHandler(con, &slog.HandlerOptions{Level: level}))
	m := &machine{root: "/", sys: realSys{}, log: base.With("component", "machine")}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		m.cmdline = strings.TrimSpace(string(b))
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		m.release = unix.ByteSliceToString(uts.Release[:])
	}
	m.log.Info("moor is the machine's init", "kernel", m.release)
	m.setup()
	// The machine's one waiter, from its first child (the setup starts
	// none) to its end: the init system's, then the halt's.
	rp := reaper.NewReaper()
	rp.OnOrphan(m.logOrphan)
	m.sys = realSys{reaper: rp}
	opts.Manager.Reaper = rp
	m.halt(m.run(opts, base, con))
	return nil // not reached: halt does not return
}

func (m *machine) logOrphan(r reaper.Reaped) {
	m.log.Debug("reaped orphan", "pid", r.PID, "code", r.Code())
}

// run runs the init system until it shuts down, and says how the machine
// goes down.
func (m *machine) run(opts Options, log *slog.Logger, con *supervisor.Console) Action {
	mo := opts.Manager
	mo.Logger = log
	var out *supervisor.ConsoleOutput
	if opts.Console {
		out = supervisor.NewConsoleOutput(con)
		mo.Output = out
	}
	sigs, action, stop := m.signals()
	defer stop()
	mo.Signals = sigs
	mo.Notify = m.notify
	err := guarded(func() error {
		mgr, err := supervisor.NewManager(mo)
		if err != nil {
			return err
		}
		// While the tree runs, an orphan that was a task's anchor (an app
		// a service made with the CLI or the library) has its exit
		// recorded.
		if mo.Reaper != nil {
			mo.Reaper.OnOrphan(mgr.Orphan)
			defer mo.Reaper.OnOrphan(m.logOrphan)
		}
		return mgr.Run(context.Background())
	})
	if out != nil {
		out.FlushAll()
	}
	if err != nil {
		m.log.Error("the init system failed: powering off", "err", err)
		return PowerOff
	}
	return action()
}

// guarded runs fn and turns a panic into an error with its stack.
func guarded(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return fn()
}

// signals forwards the process's signals, and power-button presses as
// SIGPWR, to the init system; action is what the first that ends the
// machine asked for; stop ends the process's signals' delivery.
func (m *machine) signals() (sigs <-chan os.Signal, action func() Action, stop func()) {
	in := make(chan os.Signal, 8)
	signal.Notify(in, unix.SIGTERM, unix.SIGINT, unix.SIGPWR, unix.SIGHUP, unix.SIGUSR1, RestartSignal)
	out := make(chan os.Signal, 8)
	var first atomic.Int32
	first.Store(-1)
	go func() {
		for {
			var sig os.Signal
			select {
			case sig = <-in:
			case <-m.button:
				sig = unix.SIGPWR
				m.log.Info("power button pressed")
			}
			if a, ok := actionOf(sig.(unix.Signal)); ok && first.CompareAndSwap(-1, int32(a)) {
				m.log.Info("machine shutdown requested", "signal", unix.SignalName(sig.(unix.Signal)), "action", a.String())
			}
			out <- sig
		}
	}()
	return out, func() Action {
		if a := first.Load(); a >= 0 {
			return Action(a)
		}
		return PowerOff
	}, func() { signal.Stop(in) }
}

// notify takes the init system's sd_notify states: at READY=1, every
// service started, it logs the figures of the boot.
func (m *machine) notify(state string) {
	if state != daemon.SdNotifyReady {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	var rss uint64
	if st, err := procfs.ReadStatus(m.path("/proc"), os.Getpid()); err == nil {
		rss = st.RSSKiB
	}
	m.log.Info("machine ready", "boot_ready_ms", ts.Nano()/int64(time.Millisecond), "rss_kib", rss)
}
