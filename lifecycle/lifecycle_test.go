package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/lifecycle/fake"
	"github.com/lf-edge/moor/reaper"
)

// rp is the test process's one reaper: the fake's anchors are its children.
var rp *reaper.Reaper

func TestMain(m *testing.M) {
	rp = reaper.NewReaper()
	code := m.Run()
	rp.Close()
	os.Exit(code)
}

// env is a Tasks over the fake runtime, in a temp state root.
type env struct {
	tasks *lifecycle.Tasks
	rt    *fake.Runtime
	root  string
	dir   string // where bundles go
	exits chan string
}

func newEnv(t *testing.T, opts lifecycle.Options) *env {
	t.Helper()
	e := &env{rt: fake.New(), root: t.TempDir(), dir: t.TempDir(), exits: make(chan string, 16)}
	opts.Root, opts.Runtime, opts.AnySpec = e.root, e.rt, true
	if opts.OnExit == nil {
		opts.OnExit = func(id string, _ *lifecycle.Exit) { e.exits <- id }
	}
	tasks, err := lifecycle.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.tasks = tasks
	return e
}

func withReaper(t *testing.T) *env { return newEnv(t, lifecycle.Options{Reaper: rp}) }

// create makes a task running args on the host.
func (e *env) create(t *testing.T, id string, args ...string) *lifecycle.Record {
	t.Helper()
	rec, err := e.tasks.Create(context.Background(), e.options(t, id, args...))
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	t.Cleanup(func() { _ = e.tasks.Delete(context.Background(), id, true) })
	return rec
}

func (e *env) options(t *testing.T, id string, args ...string) lifecycle.CreateOptions {
	t.Helper()
	bundle := filepath.Join(e.dir, id)
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := specconv.Example()
	s.Root = &specs.Root{Path: "rootfs", Readonly: true}
	s.Process.Terminal = false
	s.Process.Args = args
	return lifecycle.CreateOptions{ID: id, Bundle: bundle, Spec: s}
}

// wait waits for the task's exit, with a deadline.
func (e *env) wait(t *testing.T, id string) *lifecycle.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ex, err := e.tasks.Wait(ctx, id)
	if err != nil || ex == nil {
		t.Fatalf("wait for %s: %v, %v", id, ex, err)
	}
	return ex
}

func (e *env) status(t *testing.T, id string) lifecycle.Status {
	t.Helper()
	st, err := e.tasks.State(id)
	if err != nil {
		t.Fatalf("state of %s: %v", id, err)
	}
	return st.Status
}

// gone reports whether the task's state directory is gone.
func (e *env) gone(id string) bool {
	_, err := os.Stat(filepath.Join(e.root, lifecycle.DefaultNamespace, id))
	return errors.Is(err, os.ErrNotExist)
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && b[i+2] != 'Z'
		}
	}
	return false
}

func TestExitRecording(t *testing.T) {
	e := withReaper(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		args   []string
		kill   unix.Signal
		oom    bool
		reason lifecycle.ExitReason
		code   int
		signal string
	}{
		{name: "code", args: []string{"sh", "-c", "exit 3"}, reason: lifecycle.ExitCode, code: 3},
		{name: "signal", args: []string{"sleep", "100"}, kill: unix.SIGTERM, reason: lifecycle.ExitSignal, code: 143, signal: "SIGTERM"},
		{name: "oom", args: []string{"sleep", "100"}, kill: unix.SIGKILL, oom: true, reason: lifecycle.ExitOOM, code: 137, signal: "SIGKILL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := e.create(t, c.name, c.args...)
			if st := e.status(t, c.name); st != lifecycle.Created {
				t.Fatalf("after create: %s", st)
			}
			if _, err := e.tasks.Start(ctx, c.name); err != nil {
				t.Fatal(err)
			}
			if c.oom {
				c, _ := e.rt.Load(filepath.Join(e.root, lifecycle.DefaultNamespace), c.name)
				dir := c.(*fake.Container).MemoryDir()
				if err := os.WriteFile(filepath.Join(dir, "memory.oom_control"), []byte("under_oom 0\noom_kill 1\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if c.kill != 0 {
				if err := e.tasks.Signal(strconv.Itoa(rec.Anchor.PID), c.kill, false); err != nil {
					t.Fatalf("signal by anchor pid: %v", err)
				}
			}
			ex := e.wait(t, c.name)
			if ex.Reason != c.reason || ex.Code != c.code || ex.Signal != c.signal {
				t.Fatalf("exit %+v, want reason %s code %d signal %q", ex, c.reason, c.code, c.signal)
			}
			st, err := e.tasks.State(c.name)
			if err != nil || st.Status != lifecycle.Stopped || st.Exit == nil || st.Exit.Code != c.code || st.PID != 0 {
				t.Fatalf("state after exit: %+v, %v", st, err)
			}
			if err := e.tasks.Delete(ctx, c.name, false); err != nil {
				t.Fatalf("delete of a stopped task: %v", err)
			}
			if !e.gone(c.name) {
				t.Fatal("delete left the state directory")
			}
		})
	}
}

// TestCreateCleanup: a create that fails at any step leaves no state, no
// container and no process, and the name is free again.
func TestCreateCleanup(t *testing.T) {
	for _, step := range []fake.Step{fake.StepCreate, fake.StepStart} {
		t.Run(string(step), func(t *testing.T) {
			e := withReaper(t)
			e.rt.Fail = func(s fake.Step, id string) error {
				if s == step {
					return errors.New("injected")
				}
				return nil
			}
			_, err := e.tasks.Create(context.Background(), e.options(t, "x", "sleep", "100"))
			if err == nil {
				t.Fatal("create succeeded")
			}
			if !e.gone("x") {
				t.Fatal("a failed create left the state directory")
			}
			if _, err := e.rt.Load(filepath.Join(e.root, lifecycle.DefaultNamespace), "x"); err == nil {
				t.Fatal("a failed create left the container")
			}
			e.rt.Fail = nil
			e.create(t, "x", "sleep", "100")
		})
	}
	t.Run("bad spec", func(t *testing.T) {
		e := withReaper(t)
		o := e.options(t, "bad", "sleep", "100")
		o.Spec.Process.Capabilities.Bounding = []string{"CAP_TELEPORT"}
		if _, err := e.tasks.Create(context.Background(), o); !errors.Is(err, lifecycle.ErrInvalidSpec) {
			t.Fatalf("create: %v, want ErrInvalidSpec", err)
		}
		if !e.gone("bad") {
			t.Fatal("a refused spec left the state directory")
		}
	})
	t.Run("exists", func(t *testing.T) {
		e := withReaper(t)
		e.create(t, "twice", "sleep", "100")
		if _, err := e.tasks.Create(context.Background(), e.options(t, "twice", "sleep", "100")); !errors.Is(err, lifecycle.ErrExist) {
			t.Fatalf("second create: %v, want ErrExist", err)
		}
		if e.status(t, "twice") != lifecycle.Created {
			t.Fatal("a refused second create changed the first task")
		}
	})
}

// TestStopEscalates: Stop sends the stop signal, and SIGKILLs what
// ignores it once the timeout passes; a task that heeds it ends by it.
func TestStopEscalates(t *testing.T) {
	e := withReaper(t)
	ctx := context.Background()
	ready := filepath.Join(t.TempDir(), "deaf")
	e.create(t, "deaf", "sh", "-c", `trap "" TERM; touch `+ready+`; exec sleep 100`) // SIG_IGN survives exec
	e.create(t, "polite", "sleep", "100")
	for _, id := range []string{"deaf", "polite"} {
		if _, err := e.tasks.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	waitFile(t, ready) // the stop signal must find the trap set
	for id, want := range map[string]string{"deaf": "SIGKILL", "polite": "SIGTERM"} {
		if err := e.tasks.Stop(ctx, id, 200*time.Millisecond); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
		if ex := e.wait(t, id); ex.Signal != want {
			t.Fatalf("%s ended by %q, want %s", id, ex.Signal, want)
		}
	}
	if err := e.tasks.Stop(ctx, "polite", time.Second); err != nil {
		t.Fatalf("stop of a stopped task: %v", err)
	}
}

// TestDeleteRules: delete of a created task needs force and changes
// nothing without it; force kills it; a half-made task (a record with no
// container, or a container with no anchor) is deleted whole.
func TestDeleteRules(t *testing.T) {
	e := withReaper(t)
	ctx := context.Background()
	rec := e.create(t, "made", "sleep", "100")
	if err := e.tasks.Delete(ctx, "made", false); !errors.Is(err, lifecycle.ErrWrongStatus) {
		t.Fatalf("delete of a created task without force: %v", err)
	}
	if !alive(rec.Anchor.PID) || e.gone("made") {
		t.Fatal("a refused delete changed the task")
	}
	if err := e.tasks.Delete(ctx, "made", true); err != nil {
		t.Fatal(err)
	}
	if !e.gone("made") {
		t.Fatal("delete --force left the state")
	}
	if alive(rec.Anchor.PID) { // Delete returns once the anchor has exited
		t.Fatal("delete --force left the anchor")
	}

	// A create killed right after it took the name: a record, no container.
	if err := e.tasks.Store().Claim(&lifecycle.Record{ID: "half", Namespace: lifecycle.DefaultNamespace, Status: lifecycle.Creating}); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, "half"); st != lifecycle.Creating {
		t.Fatalf("half-made task reads %s", st)
	}
	if err := e.tasks.Delete(ctx, "half", false); err != nil {
		t.Fatalf("delete of a half-made task: %v", err)
	}
	if !e.gone("half") {
		t.Fatal("delete left the half-made task")
	}
}

// TestSignalRules: kill --all of a stopped task succeeds; a plain signal
// is refused; an unknown task is ErrNotExist.
func TestSignalRules(t *testing.T) {
	e := withReaper(t)
	ctx := context.Background()
	e.create(t, "brief", "true")
	if _, err := e.tasks.Start(ctx, "brief"); err != nil {
		t.Fatal(err)
	}
	e.wait(t, "brief")
	if err := e.tasks.Signal("brief", unix.SIGKILL, true); err != nil {
		t.Fatalf("signal all of a stopped task: %v", err)
	}
	if err := e.tasks.Signal("brief", unix.SIGKILL, false); !errors.Is(err, lifecycle.ErrWrongStatus) {
		t.Fatalf("signal of a stopped task's anchor: %v", err)
	}
	if err := e.tasks.Signal("nobody", unix.SIGKILL, false); !errors.Is(err, lifecycle.ErrNotExist) {
		t.Fatalf("signal of no task: %v", err)
	}
}

// TestPauseResume: the status follows pause and resume, and each refuses
// the wrong status.
func TestPauseResume(t *testing.T) {
	e := withReaper(t)
	e.create(t, "p", "sleep", "100")
	if err := e.tasks.Pause("p"); !errors.Is(err, lifecycle.ErrWrongStatus) {
		t.Fatalf("pause of a created task: %v", err)
	}
	if _, err := e.tasks.Start(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	if err := e.tasks.Pause("p"); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, "p"); st != lifecycle.Paused {
		t.Fatalf("after pause: %s", st)
	}
	if err := e.tasks.Pause("p"); !errors.Is(err, lifecycle.ErrWrongStatus) {
		t.Fatalf("pause of a paused task: %v", err)
	}
	if err := e.tasks.Resume("p"); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, "p"); st != lifecycle.Running {
		t.Fatalf("after resume: %s", st)
	}
}

// TestAdopt: a task another Tasks made (here without a reaper, as the CLI
// makes them) is adopted: its end is recorded as unknown and reported.
func TestAdopt(t *testing.T) {
	maker := newEnv(t, lifecycle.Options{})
	rec := maker.create(t, "orphan", "sleep", "100")
	if _, err := maker.tasks.Start(context.Background(), "orphan"); err != nil {
		t.Fatal(err)
	}
	exits := make(chan *lifecycle.Exit, 1)
	adopter, err := lifecycle.New(lifecycle.Options{Root: maker.root, Runtime: maker.rt, AnySpec: true,
		OnExit: func(id string, ex *lifecycle.Exit) { exits <- ex }})
	if err != nil {
		t.Fatal(err)
	}
	if err := adopter.Adopt("orphan"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(rec.Anchor.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case ex := <-exits:
		if ex.Reason != lifecycle.ExitUnknown {
			t.Fatalf("adopted exit %+v, want reason unknown", ex)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the adopted task's end was not reported")
	}
	st, err := adopter.State("orphan")
	if err != nil || st.Status != lifecycle.Stopped || st.Exit == nil {
		t.Fatalf("state after the adopted task ended: %+v, %v", st, err)
	}
	if err := adopter.Adopt("orphan"); !errors.Is(err, lifecycle.ErrWrongStatus) {
		t.Fatalf("adopt of a stopped task: %v", fmt.Sprint(err))
	}
}

// waitFile polls for a file with a deadline.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", path)
		}
		time.Sleep(delay)
	}
}
