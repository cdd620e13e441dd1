package test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
)

// TestLifecycle walks a busybox task through create → start → stop →
// delete, once addressing it by name and once by its anchor's PID.
func TestLifecycle(t *testing.T) {
	for _, byPID := range []bool{false, true} {
		name := map[bool]string{false: "by-name", true: "by-pid"}[byPID]
		t.Run(name, func(t *testing.T) {
			// The anchor exits on SIGTERM, as a well-behaved PID 1 does.
			b := newBundle(t, "sh", "-c", `trap "exit 0" TERM; while :; do sleep 0.05; done`)
			pidFile := filepath.Join(b.Dir, "pid")
			createTask(t, b, "--pid-file", pidFile)

			st := taskState(t, b.ID)
			if st.Status != lifecycle.Created {
				t.Fatalf("after create: status %s, want created", st.Status)
			}
			raw, err := os.ReadFile(pidFile)
			if err != nil || strings.TrimSpace(string(raw)) != strconv.Itoa(st.PID) {
				t.Fatalf("pid file %q (%v), state pid %d", raw, err, st.PID)
			}
			checkAnchorIsolated(t, b, st.PID)

			ref := b.ID
			if byPID {
				ref = strconv.Itoa(st.PID)
			}
			mustMoor(t, "start", ref)
			if st := taskState(t, ref); st.Status != lifecycle.Running || st.ID != b.ID {
				t.Fatalf("after start: %+v, want %s running", st, b.ID)
			}
			if ps := mustMoor(t, "ps", "--format", "json", ref); !strings.Contains(ps, strconv.Itoa(st.PID)) {
				t.Fatalf("ps: %s does not list the anchor %d", ps, st.PID)
			}
			list := mustMoor(t, "list")
			if !strings.Contains(list, b.ID) || !strings.Contains(list, "running") {
				t.Fatalf("list does not show %s running:\n%s", b.ID, list)
			}

			mustMoor(t, "stop", "--timeout", "10s", ref)
			if alive(st.PID) {
				t.Fatalf("anchor %d still alive after stop", st.PID)
			}
			if st := taskState(t, b.ID); st.Status != lifecycle.Stopped || st.PID != 0 {
				t.Fatalf("after stop: %+v, want stopped with pid 0", st)
			}

			mustMoor(t, "delete", b.ID)
			if r := moor(t, "state", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "no such task") {
				t.Fatalf("state after delete: %v", r)
			}
			if !cgroupGone(t, b.ID) {
				t.Fatalf("cgroup %s/%s left after delete", cgroupParent, b.ID)
			}
			if _, err := os.Stat(filepath.Join(stateRoot, "default", b.ID)); !os.IsNotExist(err) {
				t.Fatalf("state dir left after delete: %v", err)
			}
		})
	}
}

// checkAnchorIsolated checks that the anchor is PID 1 of a new PID
// namespace and sits in its cgroup with the spec's limits.
func checkAnchorIsolated(t *testing.T, b *bundle, pid int) {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var nspid string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "NSpid:") {
			nspid = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	if nspid != strconv.Itoa(pid)+" 1" {
		t.Fatalf("NSpid %q: the anchor should be %d on the host and 1 in its own PID namespace", nspid, pid)
	}
	for _, ns := range []string{"pid", "mnt", "uts", "ipc", "net"} {
		mine, _ := os.Readlink("/proc/self/ns/" + ns)
		its, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + ns)
		if err != nil || its == mine {
			t.Fatalf("%s namespace of the anchor %q (%v) is the host's %q", ns, its, err, mine)
		}
	}
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	want := cgroupParent + "/" + b.ID
	for _, l := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && (strings.Contains(f[1], "memory") || f[1] == "") {
			if f[2] != want {
				t.Fatalf("anchor's cgroup line %q, want path %s", l, want)
			}
		}
	}
	if got := cgroupFile(t, "memory", b.ID, "memory.limit_in_bytes"); got != strconv.FormatInt(*b.Spec.Linux.Resources.Memory.Limit, 10) {
		t.Fatalf("memory.limit_in_bytes %s, want %d", got, *b.Spec.Linux.Resources.Memory.Limit)
	}
	if got := cgroupFile(t, "cpu", b.ID, "cpu.shares"); got != strconv.FormatUint(*b.Spec.Linux.Resources.CPU.Shares, 10) {
		t.Fatalf("cpu.shares %s, want %d", got, *b.Spec.Linux.Resources.CPU.Shares)
	}
}

// TestStopKillsWhatIgnoresTerm: an anchor that ignores SIGTERM is killed,
// with every process of the task, after the timeout.
func TestStopKillsWhatIgnoresTerm(t *testing.T) {
	b := newBundle(t, "sh", "-c", `trap "" TERM; sleep 1000 & sleep 1000 & while :; do sleep 0.05; done`)
	pid := runDetached(t, b)
	waitFor(t, 5e9, "three processes in the task", func() bool {
		return strings.Count(mustMoor(t, "ps", "--format", "json", b.ID), ",") >= 2
	})
	mustMoor(t, "stop", "--timeout", "200ms", b.ID)
	if alive(pid) {
		t.Fatalf("anchor %d alive after stop", pid)
	}
	if ps := strings.TrimSpace(mustMoor(t, "ps", "--format", "json", b.ID)); ps != "[]" {
		t.Fatalf("processes left after stop: %s", ps)
	}
	mustMoor(t, "delete", b.ID)
}

// TestDeleteRefusesRunning: delete of a running task needs --force, which
// kills it.
func TestDeleteRefusesRunning(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	pid := runDetached(t, b)
	r := moor(t, "delete", b.ID)
	if r.Code == 0 || !strings.Contains(r.Stderr, "running") {
		t.Fatalf("delete of a running task: %v", r)
	}
	if !alive(pid) {
		t.Fatal("refused delete killed the task")
	}
	mustMoor(t, "delete", "--force", b.ID)
	if alive(pid) || !cgroupGone(t, b.ID) {
		t.Fatal("delete --force left the task or its cgroup")
	}
	mustMoor(t, "delete", "--force", b.ID) // gone already: still success, as runc
}

// TestCreateTwice: a second create of the same ID is refused and leaves the
// first task alone.
func TestCreateTwice(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	createTask(t, b)
	r := moor(t, "create", "--bundle", b.Dir, b.ID)
	if r.Code == 0 || !strings.Contains(r.Stderr, "exists") {
		t.Fatalf("second create: %v", r)
	}
	if st := taskState(t, b.ID); st.Status != lifecycle.Created {
		t.Fatalf("first task after refused create: %s", st.Status)
	}
}

// TestBrokenOutputPipe runs a task with moor's stderr on a pipe nobody
// reads any more (moor --debug ... 2>&1 | head -1): moor must carry on,
// not die of SIGPIPE halfway through, and the task's process must not
// inherit SIGPIPE ignored.
func TestBrokenOutputPipe(t *testing.T) {
	b := newBundle(t, "sh", "-c", "grep SigIgn /proc/self/status; exit 7")
	b.write(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	out := tempFile(t)
	cmd := moorCmd("--debug", "run", "--bundle", b.Dir, b.ID)
	cmd.Stdout, cmd.Stderr = out, w
	err = cmd.Run()
	w.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("moor --debug run with a broken stderr: %v, want the task's exit 7", err)
	}
	ign, ok := strings.CutPrefix(strings.TrimSpace(readBack(t, out)), "SigIgn:")
	mask, perr := strconv.ParseUint(strings.TrimSpace(ign), 16, 64)
	if !ok || perr != nil || mask&(1<<(int(unix.SIGPIPE)-1)) != 0 {
		t.Fatalf("the task's ignored signals: %q, want SIGPIPE not among them", ign)
	}
	if r := moor(t, "state", b.ID); r.Code == 0 {
		t.Fatalf("task left after run: %v", r)
	}
}

// TestUnreadableRecord tears a task's moor.json (as a crash on a
// disk-backed state root can): moor rebuilds it from libcontainer's state,
// so the task can still be seen, signalled and deleted. With libcontainer's
// state torn too, delete --force still frees the name.
func TestUnreadableRecord(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	pid := runDetached(t, b)
	record := recordFile(b.ID)
	if err := os.WriteFile(record, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := taskState(t, b.ID); st.Status != lifecycle.Running || st.PID != pid {
		t.Fatalf("state from a torn record: %s pid %d, want running pid %d", st.Status, st.PID, pid)
	}
	if out := mustMoor(t, "list", "-q"); !strings.Contains(out, b.ID) {
		t.Fatalf("list after a torn record: %q, want %s in it", out, b.ID)
	}
	mustMoor(t, "delete", "--force", b.ID)
	if alive(pid) || !cgroupGone(t, b.ID) {
		t.Fatal("delete --force of a task with a torn record left its anchor or cgroup")
	}

	// Both files torn: nothing says which processes were the task's.
	id := taskID(t)
	dir := filepath.Join(stateRoot, "default", id) // libcontainer's
	for _, f := range []string{recordFile(id), filepath.Join(dir, "state.json")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { moor(t, "delete", "--force", id) })
	var st lifecycle.State
	if r := moor(t, "state", id); r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil ||
		st.Status != lifecycle.Unknown || !strings.Contains(st.Reason, "corrupt record") {
		t.Fatalf("state of an unreadable task: %v, want status unknown and the reason: a corrupt record", r)
	}
	if r := moor(t, "delete", id); r.Code == 0 {
		t.Fatalf("delete without --force of an unreadable task: %v, want a refusal", r)
	}
	mustMoor(t, "delete", "--force", id)
	for _, d := range []string{dir, filepath.Dir(recordFile(id))} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("state of an unreadable task after delete --force: %v", err)
		}
	}
}
