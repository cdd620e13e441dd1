package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
)

// TestReusedPIDIsNeverSignalled: when the recorded start time does not
// match the process at the anchor's PID (as after PID reuse), the task
// reads as stopped and moor refuses to signal that PID.
func TestReusedPIDIsNeverSignalled(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	pid := runDetached(t, b)
	recPath := recordFile(b.ID)
	orig, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(orig, &rec); err != nil {
		t.Fatal(err)
	}
	a := rec["anchor"].(map[string]any)
	a["startTime"] = a["startTime"].(float64) + 1
	forged, _ := json.Marshal(rec)
	if err := os.WriteFile(recPath, forged, 0o600); err != nil {
		t.Fatal(err)
	}

	if st := taskState(t, b.ID); st.Status != lifecycle.Stopped || st.PID != 0 {
		t.Fatalf("state with a foreign start time: %s pid %d, want stopped pid 0", st.Status, st.PID)
	}
	for _, ref := range []string{b.ID, strconv.Itoa(pid)} {
		if r := moor(t, "kill", ref, "KILL"); r.Code == 0 {
			t.Fatalf("kill %s of a reused PID succeeded: %v", ref, r)
		}
	}
	if !alive(pid) {
		t.Fatal("the process at the reused PID was killed")
	}
	if err := os.WriteFile(recPath, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	mustMoor(t, "kill", strconv.Itoa(pid), "KILL")
	waitFor(t, 5*time.Second, "the anchor to die", func() bool { return !alive(pid) })
	mustMoor(t, "delete", b.ID)
}

// TestRunExitStatus: a foreground run exits with the task's status, or
// 128+signal when a signal killed the anchor.
func TestRunExitStatus(t *testing.T) {
	b := newBundle(t, "sh", "-c", "echo out; echo err >&2; exit 7")
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	r := moor(t, "run", "--bundle", b.Dir, b.ID)
	if r.Code != 7 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Fatalf("run: %v, want exit 7 with out/err", r)
	}
	if _, err := os.Stat(filepath.Join(stateRoot, "default", b.ID)); !os.IsNotExist(err) {
		t.Fatal("run without --keep left its task")
	}

	for _, sig := range []string{"KILL", "SIGKILL", "9"} {
		b := newBundle(t, "sleep", "1000")
		b.write(t)
		t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
		cmd := startForeground(t, b)
		mustMoor(t, "kill", b.ID, sig)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
			t.Fatalf("run killed with %s: %v, want exit 137", sig, err)
		}
	}
}

// startForeground starts `moor run` of the bundle and returns once its task
// runs.
func startForeground(t *testing.T, b *bundle) *exec.Cmd {
	t.Helper()
	cmd := moorCmd("run", "--bundle", b.Dir, b.ID)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the task to run", func() bool {
		r := moor(t, "state", b.ID)
		return r.Code == 0 && strings.Contains(r.Stdout, `"running"`)
	})
	return cmd
}

// TestSignalForwarding: a foreground run passes SIGTERM on to the anchor.
func TestSignalForwarding(t *testing.T) {
	b := newBundle(t, "sh", "-c", `trap "exit 42" TERM; while :; do sleep 0.05; done`)
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	cmd := startForeground(t, b)
	// The shell traps TERM before its loop: its first sleep, a child of
	// the anchor, says the trap is set (PID 1 of a PID namespace ignores
	// SIGTERM without a handler).
	pid := taskState(t, b.ID).PID
	waitFor(t, 10*time.Second, "the task's trap to be set", func() bool { return len(children(pid)) > 0 })
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 {
			t.Fatalf("run after SIGTERM: %v, want exit 42 from the task's trap", err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("run did not end within 20s of SIGTERM: the signal did not reach the task's trap")
	}
}

// TestStoppedWithoutParent: after run --detach the CLI is gone; state still
// sees the anchor exit.
func TestStoppedWithoutParent(t *testing.T) {
	b := newBundle(t, "sh", "-c", "sleep 0.2; exit 3")
	runDetached(t, b)
	waitStatus(t, b.ID, lifecycle.Stopped)
	mustMoor(t, "delete", b.ID)
}

// TestPauseResume freezes and thaws a task through its cgroup.
func TestPauseResume(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	runDetached(t, b)
	mustMoor(t, "pause", b.ID)
	if st := taskState(t, b.ID); st.Status != lifecycle.Paused {
		t.Fatalf("after pause: %s", st.Status)
	}
	if got := cgroupFile(t, "freezer", b.ID, "freezer.state"); got != "FROZEN" {
		t.Fatalf("freezer.state %s, want FROZEN", got)
	}
	if r := moor(t, "pause", b.ID); r.Code == 0 {
		t.Fatal("pause of a paused task succeeded")
	}
	mustMoor(t, "resume", b.ID)
	if st := taskState(t, b.ID); st.Status != lifecycle.Running {
		t.Fatalf("after resume: %s", st.Status)
	}
	mustMoor(t, "pause", b.ID)
	mustMoor(t, "kill", b.ID, "KILL") // reaches a frozen anchor: moor thaws it
	waitStatus(t, b.ID, lifecycle.Stopped)
	mustMoor(t, "delete", b.ID)

	b = newBundle(t, "sleep", "1000")
	runDetached(t, b)
	mustMoor(t, "pause", b.ID)
	mustMoor(t, "delete", "--force", b.ID) // a frozen task can still be killed
	if !cgroupGone(t, b.ID) {
		t.Fatal("cgroup left after delete --force of a paused task")
	}
}

// TestExec runs processes in a running task's namespaces.
func TestExec(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	runDetached(t, b)
	r := moor(t, "exec", b.ID, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; exit 5")
	if r.Code != 5 || r.Stdout != b.ID+"\nsleep 1000 " {
		t.Fatalf("exec: %v, want the task's hostname, its PID 1 and exit 5", r)
	}
	procFile := filepath.Join(b.Dir, "process.json")
	if err := os.WriteFile(procFile, []byte(`{"args":["sh","-c","echo $FOO"],"env":["PATH=/bin","FOO=bar"],"cwd":"/","user":{"uid":0,"gid":0}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustMoor(t, "exec", "--process", procFile, b.ID); out != "bar\n" {
		t.Fatalf("exec --process: %q", out)
	}
	mustMoor(t, "pause", b.ID)
	if r := moor(t, "exec", b.ID, "true"); r.Code == 0 {
		t.Fatal("exec in a paused task succeeded")
	}
	mustMoor(t, "delete", "--force", b.ID)
}
