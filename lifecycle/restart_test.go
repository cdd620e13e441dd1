package lifecycle_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/reaper"
)

// TestStartStopped: Start of a stopped task makes it anew from its saved
// spec under the same name: a new anchor, restarts one more, its output
// where WithIO says, its hooks run again (poststart here). StartCreated
// refuses a stopped task, as OCI start must.
func TestStartStopped(t *testing.T) {
	e := withReaper(t)
	ctx := context.Background()
	marks := filepath.Join(e.dir, "poststart")
	o := e.options(t, "app", "sh", "-c", "echo run; exec sleep 100")
	o.Spec.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo started >> " + marks}}}}
	rec, err := e.tasks.Create(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.tasks.Delete(context.Background(), "app", true) })
	if _, err := e.tasks.Start(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	first := rec.Anchor.PID
	if err := e.tasks.Signal("app", unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	<-e.exits
	if _, err := e.tasks.StartCreated(ctx, "app"); !errors.Is(err, lifecycle.ErrWrongStatus) {
		t.Fatalf("StartCreated of a stopped task: %v, want ErrWrongStatus", err)
	}
	out, err := os.Create(filepath.Join(e.dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	again, err := e.tasks.Start(ctx, "app", lifecycle.WithIO(lifecycle.IO{Stdout: out}))
	if err != nil {
		t.Fatalf("start of the stopped task: %v", err)
	}
	st, err := e.tasks.State("app")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != lifecycle.Running || st.PID == first || st.PID != again.Anchor.PID || st.Restarts != 1 || st.Exit != nil {
		t.Fatalf("after start of the stopped task: %+v, want running with a new anchor (not %d) and 1 restart", st, first)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b, _ := os.ReadFile(out.Name()); string(b) != "run\n"; b, _ = os.ReadFile(out.Name()) {
		if time.Now().After(deadline) {
			t.Fatalf("the new anchor's output: %q, want run", b)
		}
		<-time.After(10 * time.Millisecond)
	}
	if b, _ := os.ReadFile(marks); strings.Count(string(b), "started") != 2 {
		t.Fatalf("poststart ran %q, want once a start", b)
	}
}

// TestRecordOrphan: a task made by a Tasks with no reaper (as the CLI
// makes one), in another namespace, whose anchor the process's reaper
// collects as an orphan: RecordOrphan on the reaper's Tasks records its
// exit (137, SIGKILL) as a foreground run would, and the task's maker,
// which adopted it, is told of the exit once; a stranger's exit is not
// taken for a task's.
func TestRecordOrphan(t *testing.T) {
	e := newEnv(t, lifecycle.Options{Namespace: "eve-user-apps"})
	init, err := lifecycle.New(lifecycle.Options{Root: e.root, Namespace: "services.linuxkit", Runtime: e.rt, Reaper: rp})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan bool, 4)
	rp.OnOrphan(func(r reaper.Reaped) { got <- init.RecordOrphan(r) })
	t.Cleanup(func() { rp.OnOrphan(func(reaper.Reaped) {}) })

	stranger := exec.Command("true") // a child nobody watches: an orphan to the reaper
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case took := <-got:
		if took {
			t.Fatal("a stranger's exit was taken for a task's")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stranger was not reaped")
	}
	e.create(t, "app", "sleep", "100")
	rec, err := e.tasks.Start(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	// Its maker adopts it, as a restarted manager does: whoever records
	// the exit first, the adopter is told of it, once.
	if err := e.tasks.Adopt("app"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(rec.Anchor.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.exits:
	case <-time.After(10 * time.Second):
		t.Fatal("the adopter was not told of the exit")
	}
	for took := false; !took; {
		select {
		case took = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the anchor was not reaped as an orphan")
		}
	}
	st, err := e.tasks.State("app")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != lifecycle.Stopped || st.Exit == nil || st.Exit.Code != 137 || st.Exit.Signal != "SIGKILL" || st.Exit.Reason != lifecycle.ExitSignal {
		t.Fatalf("state after the orphan's exit: %+v (exit %+v), want stopped, 137 SIGKILL", st, st.Exit)
	}
	select {
	case id := <-e.exits:
		t.Fatalf("the adopter was told of %s's exit twice", id)
	default:
	}
}
