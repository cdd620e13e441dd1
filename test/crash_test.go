package test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
)

// crashSeed makes the sequence of kill points the same in every run.
const crashSeed = 12

// injectPoints are, per verb, the syscalls at which strace kills moor and
// how many calls of each one thread of moor makes at most in that verb
// (counted with strace -f); the N-th call is picked at random below it.
var injectPoints = map[string][]struct {
	syscall string
	upTo    int
}{
	"create": {{"mkdirat", 23}, {"openat", 12}, {"write", 20}, {"renameat", 2}, {"mount", 2}, {"unlinkat", 2}},
	"start":  {{"openat", 8}, {"write", 1}, {"renameat", 1}, {"unlinkat", 1}},
	"delete": {{"unlinkat", 41}, {"openat", 12}, {"pidfd_send_signal", 1}, {"umount2", 2}, {"renameat", 1}},
}

// crashCase is one kill of a moor verb: after a delay, or by strace at
// the when-th call of a syscall.
type crashCase struct {
	verb     string
	writable bool // the task has a writable root (an overlay in its scratch)
	delay    time.Duration
	syscall  string
	when     int
}

func (c crashCase) String() string {
	root := "read-only root"
	if c.writable {
		root = "writable root"
	}
	if c.syscall != "" {
		return fmt.Sprintf("%s, %s, SIGKILL at call %d of %s", c.verb, root, c.when, c.syscall)
	}
	return fmt.Sprintf("%s, %s, SIGKILL after %v", c.verb, root, c.delay)
}

// crashCases is a fixed sequence of n kill points over the three verbs,
// half by delay (1 to 30 ms) and half by syscall.
func crashCases(n int) []crashCase {
	rng := rand.New(rand.NewPCG(crashSeed, crashSeed))
	verbs := []string{"create", "start", "delete"}
	cases := make([]crashCase, n)
	for i := range cases {
		c := crashCase{verb: verbs[i%len(verbs)], writable: rng.IntN(2) == 1}
		if i%2 == 0 {
			c.delay = time.Duration(1+rng.IntN(30)) * time.Millisecond
		} else {
			p := injectPoints[c.verb][rng.IntN(len(injectPoints[c.verb]))]
			c.syscall, c.when = p.syscall, 1+rng.IntN(p.upTo)
		}
		cases[i] = c
	}
	return cases
}

// TestCrashAnywhere kills moor create, start and delete at many points
// (random delays and syscall fault injection) and then checks that the
// name is never stuck: state and list tell the truth, delete --force
// exits 0 and leaves nothing (cgroups, the parent cgroup moor made,
// mounts, state, scratch, processes), and create of the same name works
// again. 20 cases, or 500 under MOOR_SOAK=1.
func TestCrashAnywhere(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is needed for fault injection (scripts/deps.sh installs it): %v", err)
	}
	cases := crashCases(scaled(20, 500))
	hits := map[string]int{}
	failed := 0
	for i, c := range cases {
		ok := t.Run(strconv.Itoa(i), func(t *testing.T) {
			if crashOnce(t, strace, c) {
				hits[c.verb]++
			}
		})
		if !ok {
			failed++
		}
	}
	waitNoStrays(t, "the crashes")
	killed := hits["create"] + hits["start"] + hits["delete"]
	t.Logf("figure: %d kills of create/start/delete, %d landed before the verb ended (create %d, start %d, delete %d); cases with a lie, a leak or a stuck name: %d",
		len(cases), killed, hits["create"], hits["start"], hits["delete"], failed)
	if killed < len(cases)/3 {
		t.Errorf("only %d of %d kills landed while the verb ran: the kill points miss moor", killed, len(cases))
	}
}

// crashOnce runs one case and reports whether the kill landed before the
// verb ended on its own.
func crashOnce(t *testing.T, strace string, c crashCase) bool {
	newB := newBundle
	if c.writable {
		newB = writableBundle
	}
	b := newB(t, "sleep", "1000")
	// A parent cgroup of the task's own, which moor makes and must remove.
	parent := cgroupParent + "/" + b.ID + "-parent"
	b.Spec.Linux.CgroupsPath = parent + "/" + b.ID
	b.write(t)
	t.Cleanup(func() { scrub(t, b.ID, b.Spec.Linux.CgroupsPath, parent) })
	args := []string{"create", "--bundle", b.Dir, b.ID}
	switch c.verb {
	case "start":
		mustMoor(t, "create", "--bundle", b.Dir, b.ID)
		args = []string{"start", b.ID}
	case "delete":
		mustMoor(t, "run", "--detach", "--bundle", b.Dir, b.ID)
		args = []string{"delete", "--force", b.ID}
	}
	r, landed := killedMoor(t, strace, c, args)
	t.Logf("%s: %v", c, r)
	if strings.Contains(r.Stderr, "panic:") || strings.Contains(r.Stderr, "goroutine ") {
		t.Errorf("moor %s panicked: %s", c.verb, r.Stderr)
	}
	checkTruthful(t, b.ID)
	if r := moor(t, "delete", "--force", b.ID); r.Code != 0 {
		t.Fatalf("delete --force after the crash: %v", r)
	}
	requireNothingLeft(t, "delete --force after the crash", b.ID, b.Spec.Linux.CgroupsPath, parent)
	if r := moor(t, "state", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "no such task") {
		t.Fatalf("state after delete --force: %v, want no such task", r)
	}
	if r := moor(t, "create", "--bundle", b.Dir, b.ID); r.Code != 0 {
		t.Fatalf("create of the same name after the crash: %v", r)
	}
	mustMoor(t, "delete", "--force", b.ID)
	requireNothingLeft(t, "create and delete after the crash", b.ID, b.Spec.Linux.CgroupsPath, parent)
	return landed
}

// killedMoor runs moor with args and kills it as the case says; landed
// is whether moor died of the SIGKILL.
func killedMoor(t *testing.T, strace string, c crashCase, args []string) (result, bool) {
	t.Helper()
	cmd := moorCmd(args...)
	if c.syscall == "" {
		return runKilled(t, cmd, c.delay) // the fault injected: a SIGKILL at a point in time
	}
	inject := fmt.Sprintf("inject=%s:signal=KILL:when=%d", c.syscall, c.when)
	// -f follows moor's threads; -b execve lets go of its children (the
	// anchor) once they exec, so strace ends with moor.
	cmd = exec.Command(strace, append([]string{"-f", "-b", "execve", "-qq", "-o", "/dev/null",
		"-e", "trace=" + c.syscall, "-e", inject, cmd.Path}, cmd.Args[1:]...)...)
	return runKilled(t, cmd, 0)
}

// runKilled runs cmd with its output in unlinked files and SIGKILLs it
// once after has passed (never, when zero); killed says it died of
// SIGKILL, whoever sent it.
func runKilled(t *testing.T, cmd *exec.Cmd, after time.Duration) (r result, killed bool) {
	t.Helper()
	out, errf := captureOutput(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if after > 0 {
		timer := time.AfterFunc(after, func() { _ = cmd.Process.Kill() })
		defer timer.Stop()
	}
	r = finish(t, cmd, cmd.Wait(), out, errf)
	return r, r.Code == 128+int(unix.SIGKILL)
}

// createdAnchorComm is the name libcontainer's init takes while it waits
// for start.
const createdAnchorComm = "runc:[2:INIT]"

// checkTruthful checks that state and list agree with each other and with
// what is on disk and alive: a task moor shows has its directory, a live
// status has a live anchor (a created one still waits for start), and a
// task moor does not show has no directory that would block its name.
// The anchor may end after the crash by itself (an init whose start was
// killed loses the reader of its exec fifo, and exits), so state gets a
// few seconds to catch up with it.
func checkTruthful(t *testing.T, id string) {
	t.Helper()
	var why string
	defer func() {
		if t.Failed() && why != "" {
			t.Logf("state and the facts disagree: %s", why)
		}
	}()
	waitFor(t, 5*time.Second, "state and list to tell the truth about "+id, func() bool {
		why = disagreement(t, id)
		return why == ""
	})
}

// disagreement says how state and list disagree with each other or with
// the facts ("" when they agree).
func disagreement(t *testing.T, id string) string {
	t.Helper()
	dir := filepath.Join(stateRoot, "default", id)
	_, statErr := os.Stat(dir)
	listed := slices.Contains(strings.Fields(mustMoor(t, "list", "--quiet")), id)
	r := moor(t, "state", id)
	switch {
	case r.Code == 0:
		var st lifecycle.State
		if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
			t.Fatalf("state after the crash: %v: %v", r, err)
		}
		live := st.Status == lifecycle.Created || st.Status == lifecycle.Running || st.Status == lifecycle.Paused
		switch comm := procComm(st.PID); {
		case !listed:
			return fmt.Sprintf("state shows %s %s, list does not show it", id, st.Status)
		case live && !alive(st.PID):
			return fmt.Sprintf("state says %s with anchor %d, which is not alive", st.Status, st.PID)
		case st.Status == lifecycle.Created && comm != createdAnchorComm:
			// Once libcontainer's init runs the task's process, the task runs.
			return fmt.Sprintf("state says created, yet anchor %d runs %q, not libcontainer's waiting init", st.PID, comm)
		}
		t.Logf("after the crash: %s, pid %d", st.Status, st.PID)
		return ""
	case strings.Contains(r.Stderr, "no such task"):
		if listed {
			return fmt.Sprintf("state says no such task %s, list shows it", id)
		}
		if statErr == nil {
			return fmt.Sprintf("state says no such task %s, yet its directory %s is there %s: the name is blocked", id, dir, dirList(dir))
		}
		return ""
	}
	return fmt.Sprintf("state after the crash: %v, want the task's state or no such task", r)
}
