package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/procfs"
	"github.com/lf-edge/moor/reaper"
)

// ManagerOptions configure the init-style supervisor.
type ManagerOptions struct {
	Containers string // the linuxkit-style tree: onboot/ and services/
	Root       string // state root; lifecycle.DefaultRoot when empty
	Namespace  string // SystemNamespace when empty
	Logs       TaskLogs
	// Output, when set, is where tasks' output goes instead of Logs
	// (a machine's console).
	Output TaskOutput
	Logger *slog.Logger
	// LogCheck is how often task logs are looked after (write errors
	// reported, a pipe an earlier supervisor left read again); 1s when 0.
	LogCheck time.Duration
	// ProcRoot is procfs; procfs.Root when empty.
	ProcRoot string
	// CgroupParent, when set, confines every task's cgroup below it (see
	// lifecycle.Options). Empty or "/" confines nothing: a spec's absolute
	// cgroupsPath (EVE's /eve/services/<name>) is taken as it is, and a
	// task without one goes to /<namespace>/<id>.
	CgroupParent string
	// Notify sends an sd_notify message; by default to $NOTIFY_SOCKET, if set.
	Notify func(state string)
	// Runtime makes and finds the tasks' containers; libcontainer when
	// nil. Unit tests pass lifecycle/fake's.
	Runtime lifecycle.Runtime
	// Reaper, when set, is the process's one reaper and stays the
	// caller's: Run neither becomes a subreaper nor makes a reaper of its
	// own, and does not close it. A test process holds one for all the
	// Managers it runs, since two reapers would race for its children.
	Reaper *reaper.Reaper
	// StableAfter is how long a run must last to reset a service's
	// backoff; the package's StableAfter when 0.
	StableAfter time.Duration
	// BootID names this boot of the machine: the onboot tasks run once
	// per boot. The kernel's boot_id (ProcRoot/sys/kernel/random/boot_id)
	// when empty.
	BootID string
	// Signals, when set, is where Run takes its signals from instead of
	// the process's own (os/signal): a test feeds them through it.
	Signals <-chan os.Signal
}

// Manager boots a containers tree and keeps its services running: it is
// the process's one reaper (PID 1 or a child subreaper), restarts services
// by policy, and reacts to signals: SIGTERM, SIGINT, SIGPWR shut down in
// order; SIGHUP re-reads the tree and reconciles; SIGUSR1 writes a status
// dump. All its work happens on the goroutine that calls Run; the reaper's
// goroutine and timers only post work to it, so the thread count does not
// grow with the number of services.
type Manager struct {
	opts ManagerOptions
	sup  *lifecycle.Tasks
	log  *slog.Logger

	services map[string]*service
	order    []string // service IDs, in start order
	journal  *Journal // what this supervisor keeps across its restarts
	// rereadAfterBoot: a SIGHUP came during onboot; the tree is re-read
	// once the services are started.
	rereadAfterBoot bool

	mu    sync.Mutex
	queue []func()
	wake  chan struct{}
}

// service is what the Manager knows of one service beyond its task.
type service struct {
	unit     *Unit
	restarts int
	failures int // quick failures in a row, for the backoff
	started  time.Time
	stopping bool // its exit is expected: no restart
	timer    *time.Timer
	// failed is the last create or start error while the service has no
	// task; it is retried by policy and at SIGHUP.
	failed *Untasked
}

// NewManager checks the options. Run does the work.
func NewManager(opts ManagerOptions) (*Manager, error) {
	if opts.Namespace == "" {
		opts.Namespace = SystemNamespace
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = procfs.Root
	}
	if opts.StableAfter == 0 {
		opts.StableAfter = StableAfter
	}
	if opts.BootID == "" {
		opts.BootID = readBootID(opts.ProcRoot)
	}
	if opts.LogCheck == 0 {
		opts.LogCheck = time.Second
	}
	if opts.Notify == nil {
		opts.Notify = func(state string) { _, _ = daemon.SdNotify(false, state) }
	}
	if opts.Output == nil {
		if opts.Logs.Dir == "" {
			return nil, errors.New("manager: no log directory")
		}
		opts.Output = NewLogFiles(opts.Logs)
	}
	return &Manager{
		opts:     opts,
		log:      opts.Logger.With("component", "supervise"),
		services: map[string]*service{},
		wake:     make(chan struct{}, 1),
	}, nil
}

// post queues fn to run on Run's goroutine. Safe from any goroutine.
func (m *Manager) post(fn func()) {
	m.mu.Lock()
	m.queue = append(m.queue, fn)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) drain() {
	m.mu.Lock()
	q := m.queue
	m.queue = nil
	m.mu.Unlock()
	for _, fn := range q {
		fn()
	}
}

// Run boots the tree and supervises it until a shutdown signal, then stops
// every service in reverse start order and returns nil. It must be the only
// code in the process that waits for children.
func (m *Manager) Run(ctx context.Context) error {
	rp, release, err := m.reaper()
	if err != nil {
		return err
	}
	defer release()
	sup, err := lifecycle.New(lifecycle.Options{
		Root: m.opts.Root, Namespace: m.opts.Namespace, Logger: m.opts.Logger, Reaper: rp, ProcRoot: m.opts.ProcRoot,
		CgroupParent: m.opts.CgroupParent,
		Runtime:      m.opts.Runtime,
		AnySpec:      true, // system tasks: linuxkit writes their specs, often without limits
		OnExit:       func(id string, ex *lifecycle.Exit) { m.post(func() { m.handleExit(id, ex) }) },
	})
	if err != nil {
		return err
	}
	m.sup = sup
	sigs := m.opts.Signals
	if sigs == nil {
		own := make(chan os.Signal, 8)
		signal.Notify(own, unix.SIGTERM, unix.SIGINT, unix.SIGPWR, unix.SIGHUP, unix.SIGUSR1)
		defer signal.Stop(own)
		sigs = own
	}

	tree, err := ReadTree(m.opts.Containers)
	if tree == nil {
		return err
	}
	if err != nil {
		m.log.Error("containers tree", "err", err)
	}
	m.loadJournal()
	carried := m.adopt(tree)
	if !m.runOnboot(ctx, tree.Onboot, sigs) {
		m.shutdown()
		return nil
	}
	for _, u := range tree.Services {
		if _, ok := m.services[u.ID]; !ok {
			c := carried[u.ID]
			m.startService(ctx, u, c.Restarts, c.Failures)
		}
	}
	m.opts.Notify(daemon.SdNotifyReady)
	m.log.Info("services started", "count", len(m.services))
	if m.rereadAfterBoot {
		m.reconcile(ctx)
	}
	return m.loop(ctx, sigs)
}

// Orphan takes a child the process's reaper collected for nobody: when it
// was the anchor of a moor task under the state root, of any namespace and
// whoever made it (the CLI run from a service, a manager embedding the
// library), its exit is recorded in the task's record. Run routes its own
// reaper's orphans here; a caller that passes ManagerOptions.Reaper routes
// them itself. Safe from any goroutine.
func (m *Manager) Orphan(r reaper.Reaped) {
	m.post(func() {
		if m.sup == nil || !m.sup.RecordOrphan(r) {
			m.log.Debug("reaped orphan", "pid", r.PID, "code", r.Code())
		}
	})
}

// reaper is the process's one reaper: the caller's, or Run's own once the
// process is a subreaper; release closes Run's own, with no zombie left.
func (m *Manager) reaper() (rp *reaper.Reaper, release func(), err error) {
	if m.opts.Reaper != nil {
		return m.opts.Reaper, func() {}, nil
	}
	return reaper.Own(m.Orphan)
}

func (m *Manager) loop(ctx context.Context, sigs <-chan os.Signal) error {
	var watchdog <-chan time.Time
	if d, err := daemon.SdWatchdogEnabled(false); err == nil && d > 0 {
		t := time.NewTicker(d / 2)
		defer t.Stop()
		watchdog = t.C
	}
	logCheck := time.NewTicker(m.opts.LogCheck)
	defer logCheck.Stop()
	for {
		select {
		case <-ctx.Done():
			m.shutdown()
			return nil
		case sig := <-sigs:
			switch sig {
			case unix.SIGHUP:
				m.reconcile(ctx)
			case unix.SIGUSR1:
				m.dump()
			default:
				m.log.Info("shutting down", "signal", sig)
				m.shutdown()
				return nil
			}
		case <-m.wake:
			m.drain()
		case <-watchdog:
			m.opts.Notify(daemon.SdNotifyWatchdog)
		case <-logCheck.C:
			for id := range m.services {
				if err := m.opts.Output.Rotate(id); err != nil {
					m.log.Warn("rotate log", "id", id, "err", err)
				}
			}
		}
	}
}
