package supervisor_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/supervisor"
)

// ended makes and starts a task as an earlier supervisor would have, and
// waits for it to end by itself: the Manager finds it stopped, with no
// exit any reaper of moor's saw.
func (r *rig) ended(t *testing.T, id string, restarts int) {
	t.Helper()
	tree, err := supervisor.ReadTree(r.tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range tree.Services {
		if u.ID == id {
			r.leave(t, lifecycle.CreateOptions{ID: id, Bundle: u.Dir, Spec: u.Spec, Restarts: restarts})
			until(t, id+" to end", func() bool {
				st := r.state(t, id)
				return st != nil && st.Status == lifecycle.Stopped
			})
			return
		}
	}
	t.Fatalf("no service %s in the tree", id)
}

// TestRestartChangesNothing: a supervisor started over the root of one
// that was killed in the same boot runs no onboot task again, leaves
// stopped a service its policy ended for good (policy no after a clean
// exit, on-failure with its tries spent), restarts one that ended while
// no supervisor watched with the count of its record, and keeps the
// running one. In a new boot the onboot tasks run again.
func TestRestartChangesNothing(t *testing.T) {
	r := newRig(t)
	ranFile := filepath.Join(r.shared, "ran")
	r.add(t, "onboot", "001-provision", "echo provision >> "+ranFile, nil)
	r.add(t, "services", "once", "exit 0", policy("no"))
	r.add(t, "services", "spent", "exit 1", policy("on-failure:3"))
	r.add(t, "services", "crashed", "[ -e "+filepath.Join(r.shared, "crashed")+" ] && exec sleep 100; touch "+filepath.Join(r.shared, "crashed")+"; exit 1", policy("on-failure"))
	r.add(t, "services", "steady", sleeper, policy("always"))
	r.opts.BootID = "boot-1"

	// The first supervisor's boot, as it left it when killed: onboot ran
	// (its journal says so), services in every state.
	j := supervisor.Journal{BootID: "boot-1", Onboot: []string{"provision"}, OnbootDone: true}
	b, _ := json.Marshal(j)
	if err := os.MkdirAll(r.root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(supervisor.JournalPath(r.root, supervisor.SystemNamespace), b, 0o600); err != nil {
		t.Fatal(err)
	}
	// It was killed as it wrote its journal and its status dump.
	journal := supervisor.JournalPath(r.root, supervisor.SystemNamespace)
	stale := []string{
		filepath.Join(r.root, "."+filepath.Base(journal)+".1234"),
		filepath.Join(r.root, ".status-"+supervisor.SystemNamespace+".json.5678"),
	}
	for _, f := range stale {
		if err := os.WriteFile(f, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.ended(t, "once", 0)
	r.ended(t, "spent", 3)
	r.ended(t, "crashed", 2)
	tree, _ := supervisor.ReadTree(r.tree)
	steadyPID := r.leave(t, lifecycle.CreateOptions{ID: "steady", Bundle: tree.Services[3].Dir, Spec: tree.Services[3].Spec, Restarts: 5})

	r.run(t)
	r.ready(t)
	if _, err := os.Stat(ranFile); !os.IsNotExist(err) {
		t.Fatalf("the onboot task ran again in the same boot (%v)", err)
	}
	for _, f := range stale {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("the killed supervisor's temporary file %s is still there (%v)", f, err)
		}
	}
	if st := r.running(t, "steady", 0); st.PID != steadyPID || st.Restarts != 5 {
		t.Fatalf("steady: %+v, want pid %d adopted with 5 restarts", st, steadyPID)
	}
	if st := r.running(t, "crashed", 0); st.Restarts != 3 {
		t.Fatalf("crashed: restarted with restarts %d, want 3 (its record's 2, plus one)", st.Restarts)
	}
	for id, restarts := range map[string]int{"once": 0, "spent": 3} {
		st := r.state(t, id)
		if st == nil || st.Status != lifecycle.Stopped || st.Restarts != restarts {
			t.Fatalf("%s: %+v, want it left stopped with %d restarts", id, st, restarts)
		}
		if n := len(r.log.find("service started", id)); n != 0 {
			t.Fatalf("%s was started %d times by the new supervisor", id, n)
		}
	}
	r.stop(t)

	// Another boot: onboot runs again, once.
	r2 := *r
	r2.opts.BootID = "boot-2"
	r2.done = make(chan error, 1)
	r2.run(t)
	r2.ready(t)
	if b, err := os.ReadFile(ranFile); err != nil || string(b) != "provision\n" {
		t.Fatalf("onboot in a new boot: %q (%v), want one run", b, err)
	}
}

// TestFailedCreateIsKept: a service whose create fails is not dropped: it
// is retried by its policy with the backoff, the status dump and the
// journal show it with its error, and SIGHUP retries it at once.
func TestFailedCreateIsKept(t *testing.T) {
	r := newRig(t)
	r.add(t, "services", "broken", sleeper, policy("on-failure:2"))
	rootfs := filepath.Join(r.tree, "services", "broken", "rootfs")
	if err := os.Remove(rootfs); err != nil {
		t.Fatal(err)
	}
	r.run(t)
	r.ready(t)
	r.log.wait(t, 2, "restarting service", "broken")
	r.log.wait(t, 3, "start service", "broken")
	until(t, "the retries to end", func() bool { return len(r.log.find("service stopped: its policy keeps it stopped", "broken")) == 1 })

	jr, err := supervisor.ReadJournal(r.root, supervisor.SystemNamespace)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := jr.Untasked["broken"]
	if !ok || !strings.Contains(f.Error, "root.path") || f.Restarts != 2 {
		t.Fatalf("journal: %+v, want broken's root.path error after 2 restarts", jr.Untasked)
	}
	r.signal(t, unix.SIGUSR1)
	dump := filepath.Join(r.root, "status-"+supervisor.SystemNamespace+".json")
	var entries []supervisor.DumpEntry
	until(t, "the status dump", func() bool {
		b, err := os.ReadFile(dump)
		return err == nil && json.Unmarshal(b, &entries) == nil && len(entries) == 1
	})
	if e := entries[0]; e.ID != "broken" || e.Status != lifecycle.Stopped || !strings.Contains(e.Error, "root.path") {
		t.Fatalf("status dump: %+v", entries)
	}

	// Fixed, then SIGHUP: it starts, and the journal forgets the error.
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	r.signal(t, unix.SIGHUP)
	r.running(t, "broken", 0)
	until(t, "the journal to forget the error", func() bool {
		jr, err := supervisor.ReadJournal(r.root, supervisor.SystemNamespace)
		return err == nil && len(jr.Untasked) == 0
	})
}

// TestStableRunResetsBackoff: a run that lasted StableAfter starts the
// backoff over; quick failures double it. A quick run must end within
// StableAfter, which a loaded machine's shell may not in 150 ms: 500 ms.
func TestStableRunResetsBackoff(t *testing.T) {
	r := newRig(t)
	r.opts.StableAfter = 500 * time.Millisecond
	stamp := filepath.Join(r.shared, "slow")
	// slow: its first two runs last past StableAfter, then it fails at once.
	r.add(t, "services", "slow", "echo >> "+stamp+"; [ $(wc -l < "+stamp+") -le 2 ] && sleep 0.7; exit 1", policy("on-failure:4"))
	r.run(t)
	r.ready(t)
	recs := r.log.wait(t, 4, "restarting service", "slow")
	want := []time.Duration{supervisor.Backoff(0), supervisor.Backoff(0), supervisor.Backoff(1), supervisor.Backoff(2)}
	for i, rec := range recs[:4] {
		if in := attr(rec, "in").Duration(); in != want[i] {
			t.Errorf("restart %d in %v, want %v", i+1, in, want[i])
		}
	}
}

// TestOnbootKilledBeforeStart: an onboot task the journal notes but that
// never started (the supervisor was killed between the note and the
// start: no task, or a task left created) runs once after the restart;
// one noted as run does not run again, with or without its task.
func TestOnbootKilledBeforeStart(t *testing.T) {
	for _, c := range []struct {
		name    string
		ended   bool
		created bool
		runs    string
	}{
		{"no task", false, false, "provision\n"},
		{"task left created", false, true, "provision\n"},
		{"ran, task removed", true, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			ranFile := filepath.Join(r.shared, "ran")
			r.add(t, "onboot", "001-provision", "echo provision >> "+ranFile, nil)
			r.add(t, "services", "steady", sleeper, policy("always"))
			r.opts.BootID = "boot-1"
			j := supervisor.Journal{BootID: "boot-1", Onboot: []string{"provision"}}
			if c.ended {
				j.OnbootEnded = []string{"provision"}
			}
			b, _ := json.Marshal(j)
			if err := os.MkdirAll(r.root, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(supervisor.JournalPath(r.root, supervisor.SystemNamespace), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if c.created {
				tree, _ := supervisor.ReadTree(r.tree)
				if _, err := r.tasks.Create(context.Background(), lifecycle.CreateOptions{ID: "provision", Bundle: tree.Onboot[0].Dir, Spec: tree.Onboot[0].Spec}); err != nil {
					t.Fatal(err)
				}
			}
			r.run(t)
			r.ready(t)
			if got, _ := os.ReadFile(ranFile); string(got) != c.runs {
				t.Errorf("onboot output %q, want %q", got, c.runs)
			}
			if st := r.state(t, "provision"); st != nil {
				t.Errorf("the onboot task is left: %+v", st)
			}
			jr, err := supervisor.ReadJournal(r.root, supervisor.SystemNamespace)
			if err != nil || !jr.OnbootDone {
				t.Errorf("journal %+v (%v), want onboot done", jr, err)
			}
		})
	}
}
