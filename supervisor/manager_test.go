package supervisor_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/supervisor"
)

// sleeper is a service that runs until signalled.
const sleeper = "exec sleep 100"

func policy(p string) map[string]string { return map[string]string{supervisor.RestartAnnotation: p} }

// TestRestartPolicy: each policy through real exits of the fake's tasks:
// on-failure:N restarts a failing service N times with the backoff
// doubling, then leaves it stopped; "no" and a clean exit under
// on-failure leave it stopped; "always" restarts a clean exit; a reboot
// (SIGHUP) restarts whatever the policy, a poweroff (SIGINT) stops for
// good whatever the policy. The restart count is the task's.
func TestRestartPolicy(t *testing.T) {
	r := newRig(t)
	r.add(t, "services", "fails", "exit 1", policy("on-failure:2"))
	r.add(t, "services", "once", "exit 1", policy("no"))
	r.add(t, "services", "clean", "exit 0", policy("on-failure"))
	r.add(t, "services", "always", "exit 0", policy("always"))
	r.add(t, "services", "reboot", sleeper, policy("no"))
	r.add(t, "services", "poweroff", sleeper, policy("always"))
	r.run(t)
	r.ready(t)

	kept := "service stopped: its policy keeps it stopped"
	for id, want := range map[string]struct{ restarts, code int }{"fails": {2, 1}, "once": {0, 1}, "clean": {0, 0}} {
		r.log.wait(t, 1, kept, id)
		st := r.state(t, id)
		if st == nil || st.Status != lifecycle.Stopped || st.Restarts != want.restarts || st.Exit == nil || st.Exit.Code != want.code {
			t.Fatalf("%s after its policy kept it stopped: %+v, want %d restarts and code %d", id, st, want.restarts, want.code)
		}
	}
	// The backoff: Backoff(0), then Backoff(1), each waited out before
	// the next start.
	restarting := r.log.find("restarting service", "fails")
	started := r.log.find("service started", "fails")
	if len(restarting) != 2 || len(started) != 3 {
		t.Fatalf("fails: %d restarts planned and %d starts, want 2 and 3", len(restarting), len(started))
	}
	for i, rec := range restarting {
		in := attr(rec, "in").Duration()
		if in != supervisor.Backoff(i) {
			t.Errorf("restart %d of fails in %v, want %v", i+1, in, supervisor.Backoff(i))
		}
		if waited := started[i+1].Time.Sub(rec.Time); waited < in {
			t.Errorf("restart %d of fails came after %v, before its backoff %v", i+1, waited, in)
		}
		if n := attr(started[i+1], "restarts").Int64(); n != int64(i+1) {
			t.Errorf("restart %d of fails started with restarts=%d", i+1, n)
		}
	}

	until(t, "always restarted twice", func() bool {
		st := r.state(t, "always")
		return st != nil && st.Restarts >= 2
	})

	old := r.running(t, "reboot", 0)
	if err := r.tasks.Signal("reboot", unix.SIGHUP, false); err != nil {
		t.Fatal(err)
	}
	if st := r.running(t, "reboot", old.PID); st.Restarts != 1 {
		t.Fatalf("reboot after SIGHUP: restarts %d, want 1", st.Restarts)
	}

	r.running(t, "poweroff", 0)
	if err := r.tasks.Signal("poweroff", unix.SIGINT, false); err != nil {
		t.Fatal(err)
	}
	r.log.wait(t, 1, "service powered off: it stays stopped", "poweroff")
	if st := r.state(t, "poweroff"); st == nil || st.Status != lifecycle.Stopped || st.Restarts != 0 {
		t.Fatalf("poweroff after SIGINT: %+v", st)
	}
	r.stop(t)
}

// TestAdopt: a running task of the tree's spec, left by an earlier
// supervisor, is adopted (same anchor, same restart count), and its end
// restarts it counting on; a task whose spec changed, and one the tree no
// longer has, are stopped and removed.
func TestAdopt(t *testing.T) {
	r := newRig(t)
	r.add(t, "services", "010-kept", sleeper, policy("always"))
	r.add(t, "services", "020-changed", sleeper, policy("always"))
	tree, err := supervisor.ReadTree(r.tree)
	if err != nil {
		t.Fatal(err)
	}
	changed := *tree.Services[1].Spec
	proc := *changed.Process
	changed.Process = &proc
	changed.Process.Args = []string{"sh", "-c", "exec sleep 99"}
	left := map[string]int{} // anchors of the earlier supervisor's tasks
	for _, o := range []lifecycle.CreateOptions{
		{ID: "kept", Bundle: tree.Services[0].Dir, Spec: tree.Services[0].Spec, Restarts: 3, Failures: 2},
		{ID: "changed", Bundle: tree.Services[1].Dir, Spec: &changed, Restarts: 1},
		{ID: "stale", Bundle: tree.Services[1].Dir, Spec: tree.Services[1].Spec},
	} {
		left[o.ID] = r.leave(t, o)
	}

	r.run(t)
	r.ready(t)
	kept := r.running(t, "kept", 0)
	if kept.PID != left["kept"] || kept.Restarts != 3 {
		t.Fatalf("kept: pid %d restarts %d, want adopted pid %d with 3 restarts", kept.PID, kept.Restarts, left["kept"])
	}
	if st := r.running(t, "changed", 0); st.PID == left["changed"] || st.Restarts != 0 {
		t.Fatalf("changed: pid %d restarts %d, want a new task", st.PID, st.Restarts)
	}
	if st := r.state(t, "stale"); st != nil {
		t.Fatalf("stale task kept: %+v", st)
	}
	for _, id := range []string{"changed", "stale"} {
		if alive(left[id]) {
			t.Fatalf("the old anchor of %s was left running", id)
		}
	}

	// The adopted anchor ends: the Manager learns it through the pidfd
	// and restarts it, counting on from the adopted count.
	if err := unix.Kill(kept.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Its backoff goes on too: two quick failures were recorded, this is
	// the third.
	if st := r.running(t, "kept", kept.PID); st.Restarts != 4 || st.Failures != 3 {
		t.Fatalf("kept after its end: restarts %d failures %d, want 4 and 3", st.Restarts, st.Failures)
	}

	// The status dump tells the same.
	r.signal(t, unix.SIGUSR1)
	dump := filepath.Join(r.root, "status-"+supervisor.SystemNamespace+".json")
	var entries []supervisor.DumpEntry
	until(t, "the status dump", func() bool {
		b, err := os.ReadFile(dump)
		return err == nil && json.Unmarshal(b, &entries) == nil
	})
	byID := map[string]supervisor.DumpEntry{}
	for _, e := range entries {
		byID[e.ID] = e
	}
	if e := byID["kept"]; len(entries) != 2 || e.Restarts != 4 || e.Name != "010-kept" || e.Status != lifecycle.Running || byID["changed"].Name != "020-changed" {
		t.Fatalf("status dump: %+v", entries)
	}
	r.stop(t)
	if _, err := os.Stat(dump); !os.IsNotExist(err) {
		t.Fatalf("the status dump outlived the shutdown: %v", err)
	}
}

// leave makes and starts a task as an earlier supervisor would have, and
// returns its anchor's PID. The Manager has to adopt or remove it.
func (r *rig) leave(t *testing.T, o lifecycle.CreateOptions) int {
	t.Helper()
	ctx := context.Background()
	rec, err := r.tasks.Create(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.tasks.Start(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	return rec.Anchor.PID
}

// TestReconcile: on SIGHUP a new service starts, a removed one stops, a
// changed one restarts once, and an unchanged one is left alone. The
// changed one's old task, stopped by SIGTERM, does not count as an exit
// of its new one, even with a policy that restarts on it.
func TestReconcile(t *testing.T) {
	r := newRig(t)
	for _, name := range []string{"010-same", "020-removed", "030-changed"} {
		r.add(t, "services", name, sleeper, policy("always"))
	}
	r.run(t)
	r.ready(t)
	before := map[string]int{}
	for _, id := range []string{"same", "removed", "changed"} {
		before[id] = r.running(t, id, 0).PID
	}

	if err := os.RemoveAll(filepath.Join(r.tree, "services", "020-removed")); err != nil {
		t.Fatal(err)
	}
	r.add(t, "services", "030-changed", "exec sleep 99", policy("always"))
	r.add(t, "services", "040-added", sleeper, nil)
	r.signal(t, unix.SIGHUP)
	r.log.wait(t, 1, "reconciled", "")

	if st := r.running(t, "same", 0); st.PID != before["same"] {
		t.Fatalf("an unchanged service was restarted: pid %d, was %d", st.PID, before["same"])
	}
	if st := r.state(t, "removed"); st != nil || alive(before["removed"]) {
		t.Fatalf("a removed service is still there: %+v", st)
	}
	changed := r.running(t, "changed", 0)
	if changed.PID == before["changed"] || alive(before["changed"]) {
		t.Fatalf("a changed service was not restarted: pid %d", changed.PID)
	}
	r.running(t, "added", 0)

	// The reaper reports exits in order, and the Manager handles them in
	// order: once an exit after the reconcile is handled, so is the old
	// task's, if the reaper reported it at all.
	if err := unix.Kill(before["same"], unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.log.wait(t, 1, "restarting service", "same")
	if again := r.log.find("restarting service", "changed"); len(again) != 0 {
		t.Fatalf("the old task's exit restarted the changed service again (%d times)", len(again))
	}
	if st := r.state(t, "changed"); st == nil || st.PID != changed.PID || st.Restarts != 0 {
		t.Fatalf("the changed service's new task was replaced: %+v, was pid %d", st, changed.PID)
	}
	r.stop(t)
}

// TestOnboot: onboot tasks run one at a time, in order, each to its end
// (reaped) before the next starts; a failing one does not stop the boot;
// each is removed once done; services start after the last, and an
// onboot task's output goes to its log.
func TestOnboot(t *testing.T) {
	r := newRig(t)
	order := filepath.Join(r.shared, "order")
	// Each task appends its name, and "overlap" if the one before it is
	// still a process (a zombie counts: it must have been reaped).
	step := func(name, before string) string {
		s := "echo $$ > " + filepath.Join(r.shared, name+".pid") + "; echo " + name + " >> " + order + "; "
		if before != "" {
			s += "kill -0 $(cat " + filepath.Join(r.shared, before+".pid") + ") 2>/dev/null && echo overlap >> " + order + "; "
		}
		return s
	}
	r.add(t, "onboot", "001-first", step("first", ""), nil)
	r.add(t, "onboot", "002-fails", step("fails", "first")+"exit 3", nil)
	r.add(t, "onboot", "010-last", step("last", "fails")+"echo hello from last", nil)
	saw := filepath.Join(r.shared, "saw")
	r.add(t, "services", "svc", "cp "+order+" "+saw+".tmp && mv "+saw+".tmp "+saw+"; "+sleeper, nil)
	r.run(t)
	r.ready(t)

	want := "first\nfails\nlast\n"
	if b, err := os.ReadFile(order); err != nil || string(b) != want {
		t.Fatalf("onboot order %q (%v), want %q", b, err, want)
	}
	until(t, "the service's view of the boot", func() bool {
		b, err := os.ReadFile(saw)
		return err == nil && string(b) == want
	})
	if failed := r.log.find("onboot task failed", "fails"); len(failed) != 1 || attr(failed[0], "code").Int64() != 3 {
		t.Fatalf("the failing onboot task was not reported once with its code: %d reports", len(failed))
	}
	for _, id := range []string{"first", "fails", "last"} {
		if st := r.state(t, id); st != nil {
			t.Fatalf("onboot task %s was left: %+v", id, st)
		}
	}
	if b, err := os.ReadFile(r.opts.Logs.Path("last")); err != nil || string(b) != "hello from last\n" {
		t.Fatalf("log of last: %q, %v", b, err)
	}
	r.stop(t)
}

// TestShutdownDuringOnboot: a shutdown signal while an onboot task runs
// stops and removes it, and no service starts.
func TestShutdownDuringOnboot(t *testing.T) {
	r := newRig(t)
	r.add(t, "onboot", "001-hangs", sleeper, nil)
	r.add(t, "services", "svc", sleeper, nil)
	r.run(t)
	pid := r.running(t, "hangs", 0).PID
	r.stop(t)
	if alive(pid) {
		t.Fatal("the onboot task outlived the shutdown")
	}
	if states, err := r.tasks.List(); err != nil || len(states) != 0 {
		t.Fatalf("tasks after the shutdown: %+v, %v", states, err)
	}
	if started := r.log.find("service started", ""); len(started) != 0 {
		t.Fatalf("%d services started after a shutdown during onboot", len(started))
	}
	r.note(t, "STOPPING=1")
	select {
	case n := <-r.notes:
		t.Fatalf("sd_notify %q after STOPPING=1", n)
	default:
	}
}

// TestSignalsDuringOnboot: SIGUSR1 and SIGHUP while an onboot task runs
// do not end the boot: the dump is written, the onboot task runs to its
// end, the services start, and the tree is re-read then (a service added
// meanwhile starts too).
func TestSignalsDuringOnboot(t *testing.T) {
	r := newRig(t)
	r.add(t, "onboot", "001-waits", "while [ ! -e "+filepath.Join(r.shared, "go")+" ]; do sleep 0.01; done", nil)
	r.add(t, "services", "svc", sleeper, nil)
	r.run(t)
	r.running(t, "waits", 0)
	r.signal(t, unix.SIGUSR1)
	r.log.wait(t, 1, "status", "waits")
	r.add(t, "services", "late", sleeper, nil)
	r.signal(t, unix.SIGHUP)
	r.log.wait(t, 1, "SIGHUP during onboot: the tree is re-read once the services are started", "")
	if err := os.WriteFile(filepath.Join(r.shared, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.ready(t)
	r.log.wait(t, 1, "onboot task done", "waits")
	r.running(t, "svc", 0)
	r.running(t, "late", 0)
	r.stop(t)
}

// TestShutdown: SIGTERM stops the services in reverse start order, each
// by its stop signal; none is restarted, whatever its policy; nothing is
// left.
func TestShutdown(t *testing.T) {
	r := newRig(t)
	stops := filepath.Join(r.shared, "stops")
	for _, name := range []string{"010-a", "020-b", "030-c"} {
		id := name[4:]
		up := filepath.Join(r.shared, id+".up")
		// The trap is set before the service says it is up; on SIGTERM
		// it writes its name and ends with its child, by SIGKILL: a child
		// not yet past its exec would take a SIGTERM for its parent's trap.
		script := "trap 'echo " + id + " >> " + stops + "; kill -KILL $p; exit 0' TERM; sleep 100 & p=$!; echo $p > " + up + "; wait $p"
		r.add(t, "services", name, script, map[string]string{supervisor.RestartAnnotation: "always", supervisor.StopTimeoutAnnotation: "5s"})
	}
	r.run(t)
	r.ready(t)
	pids := map[string]int{}
	for _, id := range []string{"a", "b", "c"} {
		pids[id] = r.running(t, id, 0).PID
		until(t, id+" up", func() bool {
			b, err := os.ReadFile(filepath.Join(r.shared, id+".up"))
			n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			pids[id+"'s child"] = n
			return err == nil && n > 0
		})
	}
	r.stop(t)
	if b, err := os.ReadFile(stops); err != nil || string(b) != "c\nb\na\n" {
		t.Fatalf("stop order %q (%v), want c, b, a", b, err)
	}
	for id, pid := range pids {
		until(t, id+" gone", func() bool { return !alive(pid) })
	}
	r.note(t, "STOPPING=1")
	if planned := r.log.find("restarting service", ""); len(planned) != 0 {
		t.Fatalf("%d restarts planned during shutdown", len(planned))
	}
	if states, err := r.tasks.List(); err != nil || len(states) != 0 {
		t.Fatalf("tasks after the shutdown: %+v, %v", states, err)
	}
}

// TestLogRotation: a service's log is rotated once it reaches the limit,
// the service writing on through its own descriptor.
func TestLogRotation(t *testing.T) {
	r := newRig(t)
	r.opts.Logs.MaxBytes, r.opts.Logs.Keep = int64(len("hello\n")), 1
	r.add(t, "services", "chatty", "echo hello; "+sleeper, nil)
	r.run(t)
	r.ready(t)
	path := r.opts.Logs.Path("chatty")
	until(t, "the rotated log", func() bool {
		b, err := os.ReadFile(path + ".1")
		fi, err2 := os.Stat(path)
		return err == nil && err2 == nil && string(b) == "hello\n" && fi.Size() == 0
	})
	if strings.Contains(r.log.String(), "rotate log") {
		t.Fatalf("rotation warned:\n%s", r.log)
	}
	r.stop(t)
}
