package test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/supervisor"
)

// runs counts the lines a task appended to a file of the tree's shared
// directory: one a run.
func runs(tr *tree, name string) int {
	return strings.Count(readShared(tr, name), "\n")
}

// anchorsOf counts the live task anchors (PID 1 of their namespace)
// whose command line holds marker.
func anchorsOf(marker string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if f := nspid(pid); err == nil && strings.Contains(string(b), marker) && len(f) > 1 && f[len(f)-1] == "1" && alive(pid) {
			n++
		}
	}
	return n
}

// TestSuperviseRestartChangesNothing: `moor supervise` SIGKILLed at
// random moments and started again over the same root, N times (3, or 20
// under MOOR_SOAK=1): the onboot task runs once in all; a service with
// policy no that exited 0 runs once; an on-failure:3 service runs at most
// four times; the always service has one anchor at every moment, its
// restart count never goes back; at the end a SIGTERM stops everything.
func TestSuperviseRestartChangesNothing(t *testing.T) {
	tr := newTree(t)
	tr.add(t, "onboot", "001-provision", "echo provisioned >> /shared/provision", nil)
	tr.add(t, "services", "010-steady", "echo >> /shared/steady; "+fmt.Sprintf(trapTerm, "steady")+" # steady-anchor", map[string]string{supervisor.RestartAnnotation: "always"})
	tr.add(t, "services", "020-once", "echo >> /shared/once; exit 0", map[string]string{supervisor.RestartAnnotation: "no"})
	tr.add(t, "services", "030-spent", "echo >> /shared/spent; exit 1", map[string]string{supervisor.RestartAnnotation: "on-failure:3"})
	kills := scaled(3, 20)
	lastRestarts := 0
	for i := range kills {
		sup := tr.start(t, nil)
		// A random moment: during onboot, during the services' starts,
		// or once all runs.
		<-time.After(time.Duration(rand.IntN(1500)) * time.Millisecond)
		sup.stop(t, unix.SIGKILL)
		if n := anchorsOf("steady-anchor"); n > 1 {
			t.Fatalf("kill %d: %d anchors of steady", i+1, n)
		}
		if st, ok := sysState(t, "steady"); ok {
			if st.Restarts < lastRestarts {
				t.Fatalf("kill %d: steady's restarts went back from %d to %d", i+1, lastRestarts, st.Restarts)
			}
			lastRestarts = st.Restarts
		}
	}
	sup := tr.start(t, nil)
	waitFor(t, 20*time.Second, "steady to run and spent to be given up", func() bool {
		st, ok := sysState(t, "steady")
		sp, spok := sysState(t, "spent")
		return ok && st.Status == lifecycle.Running && spok && sp.Status == lifecycle.Stopped && sp.Restarts == 3
	})
	waitFor(t, 10*time.Second, "once to have run", func() bool { return runs(tr, "once") >= 1 })
	if n := runs(tr, "provision"); n != 1 {
		t.Errorf("onboot ran %d times over %d supervisor kills, want once", n, kills)
	}
	if n := runs(tr, "once"); n != 1 {
		t.Errorf("the policy-no service ran %d times, want once", n)
	}
	if n := runs(tr, "spent"); n > 4 {
		t.Errorf("the on-failure:3 service ran %d times, want at most 4", n)
	}
	if n := anchorsOf("steady-anchor"); n != 1 {
		t.Errorf("%d anchors of steady, want 1", n)
	}
	st, _ := sysState(t, "steady")
	t.Logf("supervisor restarts: %d SIGKILLs; onboot runs %d, once runs %d, spent runs %d, steady runs %d (restarts %d)",
		kills, runs(tr, "provision"), runs(tr, "once"), runs(tr, "spent"), runs(tr, "steady"), st.Restarts)
	fmt.Printf("supervisor restarts: %d SIGKILLs, onboot runs %d, policy-no runs %d, on-failure:3 runs %d, always restarts %d\n",
		kills, runs(tr, "provision"), runs(tr, "once"), runs(tr, "spent"), st.Restarts)
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := anchorsOf("steady-anchor"); n != 0 {
		t.Errorf("%d anchors of steady after the shutdown", n)
	}
}

// TestSuperviseFailedCreate: a service whose create fails (its root is
// missing) is not dropped: moor list shows it stopped with the error, the
// status dump too, and after the bundle is fixed SIGHUP starts it.
func TestSuperviseFailedCreate(t *testing.T) {
	tr := newTree(t)
	b := tr.add(t, "services", "010-broken", fmt.Sprintf(trapTerm, "broken"), map[string]string{supervisor.RestartAnnotation: "no"})
	root := b.Spec.Root.Path
	b.Spec.Root.Path = filepath.Join(b.Dir, "missing-root")
	b.write(t)
	sup := tr.start(t, nil)
	var row lifecycle.State
	waitFor(t, 10*time.Second, "list to show the broken service", func() bool {
		for _, st := range listTasks(t, supervisor.SystemNamespace) {
			if st.ID == "broken" {
				row = st
				return true
			}
		}
		return false
	})
	if row.Status != lifecycle.Stopped || !strings.Contains(row.Reason, "create failed") || !strings.Contains(row.Reason, "root.path") {
		t.Fatalf("list shows %+v, want broken stopped with its create error", row)
	}
	table := mustMoor(t, "--namespace", supervisor.SystemNamespace, "list")
	if !strings.Contains(table, "broken") || !strings.Contains(table, "create failed") {
		t.Fatalf("list's table has no broken service with its error:\n%s", table)
	}
	if err := sup.signal(unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the status dump to show the error", func() bool {
		d, err := os.ReadFile(filepath.Join(stateRoot, "status-"+supervisor.SystemNamespace+".json"))
		return err == nil && strings.Contains(string(d), `"error": "create task broken`)
	})
	b.Spec.Root.Path = root
	b.write(t)
	if err := sup.signal(unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, "broken", 0)
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
