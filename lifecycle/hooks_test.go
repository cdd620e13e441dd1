package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/lifecycle"
)

// TestHooksNotReaped: the child of a poststart or poststop hook is waited
// for by whoever started it, never taken by the process's reaper, which
// runs all along as `moor run`'s does, here reaping without pause: over
// many runs, every hook gets its state and none fails.
func TestHooksNotReaped(t *testing.T) {
	stop := make(chan struct{})
	reaping := make(chan struct{})
	go func() {
		defer close(reaping)
		for {
			select {
			case <-stop:
				return
			default:
				rp.ReapNow()
			}
		}
	}()
	defer func() { close(stop); <-reaping }()
	log, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	e := newEnv(t, lifecycle.Options{
		Reaper: rp, Logger: slog.New(slog.NewTextHandler(log, nil)),
		OnExit: func(string, *lifecycle.Exit) {}, // the test waits through Wait
	})
	out := t.TempDir()
	ctx := context.Background()
	const runs = 40
	for i := range runs {
		id := fmt.Sprintf("hooked-%d", i)
		record := func(name string) []specs.Hook {
			return []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(out, id+"."+name)}}}
		}
		o := e.options(t, id, "sh", "-c", "exit 0")
		o.Spec.Hooks = &specs.Hooks{Poststart: record("poststart"), Poststop: record("poststop")}
		if _, err := e.tasks.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		if _, err := e.tasks.Start(ctx, id); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		e.wait(t, id)
		if err := e.tasks.Delete(ctx, id, false); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
		for name, want := range map[string]specs.ContainerState{"poststart": specs.StateRunning, "poststop": specs.StateStopped} {
			var st specs.State
			b, err := os.ReadFile(filepath.Join(out, id+"."+name))
			if err == nil {
				err = json.Unmarshal(b, &st)
			}
			if err != nil || st.ID != id || st.Status != want {
				t.Fatalf("%s hook of %s got %q (%v), want its state with status %s", name, id, b, err, want)
			}
		}
	}
	if b, err := os.ReadFile(log.Name()); err != nil || strings.Contains(string(b), "hook failed") {
		t.Fatalf("a hook failed (%v):\n%s", err, b)
	}
}
