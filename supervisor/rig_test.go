package supervisor_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/lifecycle/fake"
	"github.com/lf-edge/moor/reaper"
	"github.com/lf-edge/moor/supervisor"
)

// rp is the test process's one reaper, handed to every Manager through
// ManagerOptions.Reaper: the fake's anchors are this process's children.
// Handing it in is simpler than running each Manager in a re-executed test
// binary, and loses only Run's own subreaper and reaper setup, which the
// root integration tests of `moor supervise` run.
var rp *reaper.Reaper

func TestMain(m *testing.M) {
	rp = reaper.NewReaper()
	code := m.Run()
	rp.Close()
	os.Exit(code)
}

// deadline bounds every wait of these tests.
const deadline = 10 * time.Second

// rig is a Manager over the fake runtime, in temp directories, driven by
// signals fed through ManagerOptions.Signals.
type rig struct {
	tree   string // the containers tree
	root   string // the state root
	logs   string // the tasks' logs
	shared string // where the tasks (host processes) write what they saw
	rt     *fake.Runtime
	// tasks reads the Manager's tasks: same root, namespace and runtime,
	// without a reaper. It also makes the tasks an earlier supervisor
	// would have left.
	tasks *lifecycle.Tasks
	log   *recorder
	sigs  chan os.Signal
	notes chan string // sd_notify states
	done  chan error  // Run's result
	opts  supervisor.ManagerOptions
}

func newRig(t *testing.T) *rig {
	t.Helper()
	base := t.TempDir()
	r := &rig{
		tree: filepath.Join(base, "containers"), root: filepath.Join(base, "state"),
		logs: filepath.Join(base, "logs"), shared: filepath.Join(base, "shared"),
		rt: fake.New(), log: newRecorder(),
		sigs: make(chan os.Signal, 1), notes: make(chan string, 16), done: make(chan error, 1),
	}
	if err := os.MkdirAll(r.shared, 0o755); err != nil {
		t.Fatal(err)
	}
	tasks, err := lifecycle.New(lifecycle.Options{Root: r.root, Namespace: supervisor.SystemNamespace, Runtime: r.rt, AnySpec: true})
	if err != nil {
		t.Fatal(err)
	}
	r.tasks = tasks
	r.opts = supervisor.ManagerOptions{
		Containers: r.tree, Root: r.root, Logs: supervisor.TaskLogs{Dir: r.logs}, Logger: slog.New(r.log),
		Runtime: r.rt, Reaper: rp, Signals: r.sigs,
		Notify: func(state string) { r.notes <- state },
	}
	return r
}

// add writes a bundle kind/name ("services" or "onboot") whose process
// runs script in sh.
func (r *rig) add(t *testing.T, kind, name, script string, annotations map[string]string) {
	t.Helper()
	dir := filepath.Join(r.tree, kind, name)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := specconv.Example()
	s.Root = &specs.Root{Path: "rootfs", Readonly: true}
	s.Process.Terminal = false
	s.Process.Args = []string{"sh", "-c", script}
	s.Annotations = annotations
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run starts the Manager. Cleanup stops it if the test did not, and
// checks it left no task.
func (r *rig) run(t *testing.T) {
	t.Helper()
	m, err := supervisor.NewManager(r.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel() // a Manager still running shuts down as on SIGTERM
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(deadline):
			t.Errorf("the Manager did not return")
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", r.log)
		}
		r.removeAll(t)
	})
}

// removeAll deletes what tasks are left, and fails the test if any were.
func (r *rig) removeAll(t *testing.T) {
	t.Helper()
	states, err := r.tasks.List()
	if err != nil {
		t.Errorf("list tasks: %v", err)
	}
	for _, st := range states {
		t.Errorf("task %s left behind (%s)", st.ID, st.Status)
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		if err := r.tasks.Stop(ctx, st.ID, 0); err != nil {
			t.Errorf("stop %s: %v", st.ID, err)
		}
		if err := r.tasks.Delete(ctx, st.ID, true); err != nil {
			t.Errorf("delete %s: %v", st.ID, err)
		}
		cancel()
	}
}

// ready waits for the Manager's READY=1, sent once boot is done.
func (r *rig) ready(t *testing.T) {
	t.Helper()
	r.note(t, "READY=1")
}

func (r *rig) note(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case n := <-r.notes:
			if n == want {
				return
			}
		case err := <-r.done:
			r.done <- err
			// Run sends its notes before it returns: they are all here.
			for {
				select {
				case n := <-r.notes:
					if n == want {
						return
					}
				default:
					t.Fatalf("the Manager returned (%v) without %s", err, want)
				}
			}
		case <-timeout:
			t.Fatalf("no %s from the Manager", want)
		}
	}
}

// signal feeds sig to the Manager.
func (r *rig) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	select {
	case r.sigs <- sig:
	case <-time.After(deadline):
		t.Fatalf("the Manager took no %v", sig)
	}
}

// stop sends SIGTERM and waits for Run to return nil.
func (r *rig) stop(t *testing.T) {
	t.Helper()
	r.signal(t, unix.SIGTERM)
	select {
	case err := <-r.done:
		r.done <- err // for Cleanup
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("the Manager did not return after SIGTERM")
	}
}

// state is a task's state, or nil when there is no such task.
func (r *rig) state(t *testing.T, id string) *lifecycle.State {
	t.Helper()
	st, err := r.tasks.State(id)
	if errors.Is(err, lifecycle.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("state of %s: %v", id, err)
	}
	return st
}

// until polls cond until it holds, with a deadline.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(deadline)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// running waits until the task runs with an anchor other than not, and
// returns its state.
func (r *rig) running(t *testing.T, id string, not int) *lifecycle.State {
	t.Helper()
	var st *lifecycle.State
	until(t, id+" running", func() bool {
		st = r.state(t, id)
		return st != nil && st.Status == lifecycle.Running && st.PID != not
	})
	return st
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(st), ')')
	return i > 0 && i+2 < len(st) && st[i+2] != 'Z'
}

// recorder is a slog.Handler that keeps the Manager's log records, so a
// test can wait for what the Manager did.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	changed chan struct{} // closed on each new record
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// WithAttrs keeps the attributes on each record, so "id" and "component"
// read the same wherever they were added.
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler { return &withAttrs{r, as} }

func (r *recorder) WithGroup(string) slog.Handler { return r }

type withAttrs struct {
	*recorder
	attrs []slog.Attr
}

func (w *withAttrs) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(w.attrs...)
	return w.recorder.Handle(ctx, rec)
}

func (w *withAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return &withAttrs{w.recorder, append(slices.Clip(w.attrs), as...)}
}

// String is the log as text, for a failing test.
func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.records {
		b.WriteString(rec.Time.Format("15:04:05.000") + " " + rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		b.WriteString("\n")
	}
	return b.String()
}

// find returns the records with message msg about task id (any task when
// id is empty).
func (r *recorder) find(msg, id string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []slog.Record
	for _, rec := range r.records {
		if rec.Message == msg && (id == "" || attr(rec, "id").String() == id) {
			found = append(found, rec)
		}
	}
	return found
}

// wait waits for n records with message msg about task id, and returns
// them all.
func (r *recorder) wait(t *testing.T, n int, msg, id string) []slog.Record {
	t.Helper()
	timeout := time.After(deadline)
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if found := r.find(msg, id); len(found) >= n {
			return found
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %d log records %q of %q", n, msg, id)
		}
	}
}

// attr is a record's attribute key, the zero Value when absent.
func attr(rec slog.Record, key string) slog.Value {
	var v slog.Value
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}
