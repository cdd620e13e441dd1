package taskmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/reaper"
)

// DefaultNamespace is the task namespace of user apps, as in EVE.
const DefaultNamespace = "eve-user-apps"

// Options configure a Manager.
type Options struct {
	Apps string // the apps directory: one subdirectory per app
	Root string // state root; lifecycle.DefaultRoot when empty
	// Namespace is the task namespace of the apps; DefaultNamespace
	// when empty. The Manager owns it: a task there that is no app of
	// Apps is stopped and deleted.
	Namespace string
	// CgroupParent is an absolute cgroup path; each app runs in
	// <CgroupParent>/<name>, and no task of the Manager outside it.
	CgroupParent string
	// Status is the status file, rewritten whenever an app changes;
	// none when empty.
	Status string
	Logger *slog.Logger
	// Runtime makes the tasks' containers; libcontainer when nil. Unit
	// tests pass lifecycle/fake's.
	Runtime lifecycle.Runtime
	// Reaper is the process's one reaper, which collects the anchors the
	// Manager starts (libcontainer makes each a child of its creator); it
	// stays the caller's.
	Reaper *reaper.Reaper
	// Signals, when set, is where Run takes SIGTERM and SIGINT from
	// instead of the process's own.
	Signals  <-chan os.Signal
	ProcRoot string // procfs; anchor.ProcRoot when empty
}

// Manager runs the apps of a directory as tasks and keeps them running.
// Its work happens on the goroutine that calls Run; the reaper, the
// adopted tasks' pidfd watches and the restart timers only post to it.
type Manager struct {
	opts  Options
	tasks *lifecycle.Tasks
	log   *slog.Logger

	apps   map[string]*app  // by name: the apps that have a task or will
	bad    map[string]error // apps whose description is wrong: no task
	status []byte           // what the status file holds

	work chan func()   // what the reaper, the pidfd watches and the timers hand to Run
	done chan struct{} // closed when Run returns
}

// app is what the Manager knows of one app beyond its task.
type app struct {
	*App
	started  time.Time // of its last run, for the backoff
	failures int       // quick failures in a row
	restarts int       // carried into a create, when the task had to be made afresh
	lastExit *lifecycle.Exit
	err      error // the last create or start error, while it has no task
	timer    *time.Timer
	stopping bool // its end is the Manager's doing: no restart
}

// New checks the options. Run does the work.
func New(opts Options) (*Manager, error) {
	if opts.Apps == "" {
		return nil, errors.New("task manager: no apps directory")
	}
	if p := opts.CgroupParent; !path.IsAbs(p) || path.Clean(p) == "/" || strings.Contains(p+"/", "/../") {
		return nil, fmt.Errorf("task manager: cgroup parent %q: want an absolute cgroup path below the root, without \"..\"", p)
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Reaper == nil {
		return nil, errors.New("task manager: no reaper")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Status != "" {
		if err := os.MkdirAll(filepath.Dir(opts.Status), 0o755); err != nil {
			return nil, fmt.Errorf("task manager: status file: %w", err)
		}
		// A manager killed as it wrote the file left a temporary beside
		// it: this one, its one writer, removes it.
		if err := atomicfile.Sweep(opts.Status); err != nil {
			return nil, fmt.Errorf("task manager: status file: %w", err)
		}
	}
	return &Manager{
		opts: opts,
		log:  opts.Logger.With("component", "taskmgr"),
		apps: map[string]*app{},
		bad:  map[string]error{},
		work: make(chan func()),
		done: make(chan struct{}),
	}, nil
}

// send hands fn to Run's goroutine: it waits until Run takes it, or
// has returned. The reaper's callbacks, which must not block, call it on
// a goroutine of its own (parked on the channel, not on a thread).
func (m *Manager) send(fn func()) {
	select {
	case m.work <- fn:
	case <-m.done:
	}
}

// Run starts the apps (adopting those an earlier Manager left), keeps
// them running until SIGTERM or SIGINT (or ctx is done), then stops and
// deletes every one and returns nil. It must be the only code in the
// process that waits for children.
func (m *Manager) Run(ctx context.Context) error {
	defer close(m.done)
	var err error
	m.tasks, err = lifecycle.New(lifecycle.Options{
		Root: m.opts.Root, Namespace: m.opts.Namespace, Logger: m.opts.Logger, Reaper: m.opts.Reaper,
		ProcRoot: m.opts.ProcRoot, CgroupParent: m.opts.CgroupParent, Runtime: m.opts.Runtime,
		OnExit: func(id string, ex *lifecycle.Exit) { go m.send(func() { m.handleExit(id, ex) }) },
	})
	if err != nil {
		return fmt.Errorf("task manager: %w", err)
	}
	sigs := m.opts.Signals
	if sigs == nil {
		own := make(chan os.Signal, 1)
		signal.Notify(own, unix.SIGTERM, unix.SIGINT)
		defer signal.Stop(own)
		sigs = own
	}
	apps, bad, err := ReadApps(m.opts.Apps, m.opts.CgroupParent)
	if err != nil {
		return fmt.Errorf("task manager: %w", err)
	}
	m.bad = bad
	for name, err := range bad {
		m.log.Error("app not run", "app", name, "err", err)
	}
	m.adopt(ctx, apps)
	for _, a := range apps {
		if m.apps[a.Name] == nil {
			m.start(ctx, &app{App: a})
		}
	}
	m.writeStatus()
	for {
		select {
		case <-ctx.Done():
		case sig := <-sigs:
			m.log.Info("shutting down", "signal", sig)
		case fn := <-m.work:
			fn()
			m.writeStatus()
			continue
		}
		m.shutdown()
		return nil
	}
}

// shutdown stops every app, all at once, each with its stop signal and
// grace, deletes their tasks and removes the status file.
func (m *Manager) shutdown() {
	var wg sync.WaitGroup
	for _, a := range m.apps {
		a.stopping = true
		if a.timer != nil {
			a.timer.Stop()
		}
		wg.Go(func() { m.remove(context.Background(), a.Name, a.StopTimeout) })
	}
	wg.Wait()
	if m.opts.Status != "" {
		if err := os.Remove(m.opts.Status); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("remove status file", "err", err)
		}
	}
	m.log.Info("all apps stopped", "count", len(m.apps))
}

// remove stops a task (its stop signal, grace, then SIGKILL of all its
// processes) and deletes it.
func (m *Manager) remove(ctx context.Context, id string, grace time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, grace+time.Minute)
	defer cancel()
	if err := m.tasks.Stop(ctx, id, grace); err != nil {
		m.log.Warn("stop app", "app", id, "err", err)
	}
	if err := m.tasks.Delete(ctx, id, true); err != nil {
		m.log.Warn("delete app", "app", id, "err", err)
	}
}
