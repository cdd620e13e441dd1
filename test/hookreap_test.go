package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lf-edge/moor/devicemodel"
)

// hookRuns is how many times TestRunPoststopHookReaped runs its task: the
// race it guards against (run's reaper taking the poststop hook's child,
// "waitid: no child processes") showed about once in ten runs.
const hookRuns = 30

// TestRunPoststopHookReaped: `moor run` of a hypervisor task, over and
// over, runs its poststop hook (moor vm poststop) after the task, and
// never warns: the hook's child is waited for by the hook runner that
// started it, through run's own reaper, which never takes it.
//
// The task is a Xen task on the fake xl, not a TCG guest: it has the same
// spec, anchor and poststop hook as every hypervisor task, and its guest
// "powers off" when the test removes its domain's state file, where a
// TCG boot takes seconds and 30 of them would make the test minutes long.
// The anchor polls the fake domain every 50ms, so a run takes a fraction
// of a second.
func TestRunPoststopHookReaped(t *testing.T) {
	f := newFakeXL(t)
	v := f.task(t, 2*time.Second)
	s := readSpec(t, v.Dir)
	s.Process.Args = append(s.Process.Args, "--poll", "50ms")
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(v.Dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	runState := filepath.Join(v.RunDir, devicemodel.RunStateFile)
	for i := range hookRuns {
		r := v.run(t)
		waitFor(t, 10*time.Second, "the domain running", func() bool {
			st, ok := f.domain(v.ID)
			return ok && st == "-b----"
		})
		if err := os.Remove(filepath.Join(f.Dir, v.ID+".state")); err != nil { // the guest powers off
			t.Fatal(err)
		}
		if code := r.wait(t, 20*time.Second); code != 0 {
			t.Fatalf("run %d: moor run exited %d; output:\n%s", i, code, v.output())
		}
		out := v.output()
		if lower := strings.ToLower(out); strings.Contains(lower, "level=warn") || strings.Contains(lower, "level=error") {
			t.Fatalf("run %d: moor run warned; output:\n%s", i, out)
		}
		// The anchor leaves its run state; the poststop hook removes it.
		if _, err := os.Stat(runState); !os.IsNotExist(err) {
			t.Fatalf("run %d: the poststop hook did not run: %s is there (%v); output:\n%s", i, runState, err, out)
		}
	}
}
