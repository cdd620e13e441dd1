package reaper

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// deadline bounds every wait of these tests.
const deadline = 10 * time.Second

// await receives from ch, or fails the test after the deadline.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("no %s within %v", what, deadline)
		panic("unreachable")
	}
}

// never fails the test if ch receives anything now.
func never[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	default:
	}
}

// newReaper starts a reaper that the test closes, with orphans sent to
// the returned channel.
func newReaper(t *testing.T) (*Reaper, chan Reaped) {
	t.Helper()
	rp := NewReaper()
	t.Cleanup(rp.Close)
	orphans := make(chan Reaped, 8)
	rp.OnOrphan(func(r Reaped) { orphans <- r })
	return rp, orphans
}

// exited waits, with the deadline, until child pid has exited, without
// collecting it (waitid with WNOWAIT): it stays for the reaper to reap.
func exited(t *testing.T, pid int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		var info unix.Siginfo
		done <- unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	}()
	if err := await(t, done, "exit of "+strconv.Itoa(pid)); err != nil {
		t.Fatalf("waitid %d: %v", pid, err)
	}
}

func TestCode(t *testing.T) {
	for _, c := range []struct {
		status unix.WaitStatus
		code   int
	}{
		{0, 0},
		{3 << 8, 3},
		{unix.WaitStatus(unix.SIGKILL), 128 + 9},
		{unix.WaitStatus(unix.SIGTERM) | 0x80, 128 + 15}, // with a core dump
	} {
		if got := (Reaped{Status: c.status}).Code(); got != c.code {
			t.Errorf("Code of status %#x = %d, want %d", uint32(c.status), got, c.code)
		}
	}
}

func TestStartExitCode(t *testing.T) {
	rp, orphans := newReaper(t)
	done := make(chan Reaped, 1)
	cmd := exec.Command("/bin/sh", "-c", "exit 3")
	if err := rp.Start(cmd, func(r Reaped) { done <- r }); err != nil {
		t.Fatal(err)
	}
	r := await(t, done, "exit of the child")
	if r.PID != cmd.Process.Pid || !r.Status.Exited() || r.Status.ExitStatus() != 3 || r.Code() != 3 {
		t.Fatalf("reaped %+v (code %d), want pid %d exited 3", r, r.Code(), cmd.Process.Pid)
	}
	never(t, orphans, "orphan")
}

func TestStartKilledBySignal(t *testing.T) {
	rp, _ := newReaper(t)
	cmd := exec.Command("/bin/sh", "-c", "kill -TERM $$")
	release := rp.HoldStarts()
	if err := cmd.Start(); err != nil {
		release()
		t.Fatal(err)
	}
	done := rp.WaitChan(cmd.Process.Pid)
	release()
	r := await(t, done, "exit of the child")
	if !r.Status.Signaled() || r.Status.Signal() != unix.SIGTERM || r.Code() != 143 {
		t.Fatalf("reaped %+v (code %d), want killed by SIGTERM, 143", r, r.Code())
	}
}

func TestStartFails(t *testing.T) {
	rp, _ := newReaper(t)
	err := rp.Start(exec.Command("/nonexistent/program"), func(Reaped) { t.Error("watcher of a child that never started called") })
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "start /nonexistent/program") {
		t.Fatalf("Start of a missing program: %v", err)
	}
	rp.mu.Lock()
	n := len(rp.watchers) + len(rp.started)
	rp.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d subscriptions left after a failed start", n)
	}
}

// TestOrphan: a grandchild whose parent exited comes to this process, a
// subreaper, and its exit goes to OnOrphan.
func TestOrphan(t *testing.T) {
	if err := BecomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	rp, orphans := newReaper(t)
	out, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	gate, gateW, err := os.Pipe() // the grandchild exits once this closes
	if err != nil {
		t.Fatal(err)
	}
	defer gateW.Close()
	// The grandchild reads fd 3 (gate) until EOF, then exits 5; its parent
	// prints its PID and exits at once.
	cmd := exec.Command("/bin/sh", "-c", `/bin/sh -c 'read x <&3; exit 5' & echo $!`)
	cmd.Stdout, cmd.ExtraFiles = outW, []*os.File{gate}
	parent := make(chan Reaped, 1)
	err = rp.Start(cmd, func(r Reaped) { parent <- r })
	outW.Close()
	gate.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := out.SetReadDeadline(time.Now().Add(deadline)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read the grandchild's PID: %v", err)
	}
	grandchild, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if r := await(t, parent, "exit of the parent"); r.Code() != 0 {
		t.Fatalf("parent exited %d", r.Code())
	}
	never(t, orphans, "orphan before the grandchild exits")
	gateW.Close()
	r := await(t, orphans, "the orphan's exit")
	if r.PID != grandchild || r.Code() != 5 {
		t.Fatalf("orphan %+v (code %d), want pid %d, code 5", r, r.Code(), grandchild)
	}
}

// TestHoldStarts: while a start holds the reaper, an exited child is not
// collected (so it cannot be taken for an orphan); once the start has
// watched it and released, its exit goes to the watcher.
func TestHoldStarts(t *testing.T) {
	rp, orphans := newReaper(t)
	release := rp.HoldStarts()
	cmd := exec.Command("/bin/sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		release()
		t.Fatal(err)
	}
	exited(t, cmd.Process.Pid) // SIGCHLD has come; the loop waits for the hold
	done := make(chan Reaped, 1)
	rp.Watch(cmd.Process.Pid, func(r Reaped) { done <- r })
	never(t, orphans, "orphan while the start holds the reaper")
	release()
	if r := await(t, done, "exit of the held child"); r.PID != cmd.Process.Pid || r.Code() != 7 {
		t.Fatalf("reaped %+v, want pid %d code 7", r, cmd.Process.Pid)
	}
	never(t, orphans, "orphan")
}

// TestUnwatch: an unwatched child's exit goes to OnOrphan, not to the
// watcher it had.
func TestUnwatch(t *testing.T) {
	rp, orphans := newReaper(t)
	release := rp.HoldStarts()
	cmd := exec.Command("/bin/sh", "-c", "exit 4")
	if err := cmd.Start(); err != nil {
		release()
		t.Fatal(err)
	}
	rp.Watch(cmd.Process.Pid, func(Reaped) { t.Error("watcher called after Unwatch") })
	rp.Unwatch(cmd.Process.Pid)
	release()
	if r := await(t, orphans, "exit of the unwatched child"); r.PID != cmd.Process.Pid || r.Code() != 4 {
		t.Fatalf("orphan %+v, want pid %d code 4", r, cmd.Process.Pid)
	}
}

// TestReapNow: ReapNow collects a child that has exited; when it returns,
// the child's watcher has run, whether ReapNow or the loop reaped it.
func TestReapNow(t *testing.T) {
	rp, _ := newReaper(t)
	done := make(chan Reaped, 1)
	release := rp.HoldStarts()
	cmd := exec.Command("/bin/sh", "-c", "exit 9")
	if err := cmd.Start(); err != nil {
		release()
		t.Fatal(err)
	}
	rp.Watch(cmd.Process.Pid, func(r Reaped) { done <- r })
	exited(t, cmd.Process.Pid)
	release()
	rp.ReapNow()
	select {
	case r := <-done:
		if r.Code() != 9 {
			t.Fatalf("reaped %+v, want code 9", r)
		}
	default:
		t.Fatal("ReapNow returned before the exited child's watcher ran")
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil); !errors.Is(err, syscall.ECHILD) {
		t.Fatalf("wait4 after ReapNow: %v, want ECHILD (reaped)", err)
	}
}

// start starts /bin/sh -c script through rp and returns its PID and the
// channel its exit comes on.
func start(t *testing.T, rp *Reaper, script string) (int, chan Reaped) {
	t.Helper()
	done := make(chan Reaped, 2) // room for a second exit, which would be a bug
	cmd := exec.Command("/bin/sh", "-c", script)
	if err := rp.Start(cmd, func(r Reaped) { done <- r }); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid, done
}

// TestStartNoReaper: with no reaper in the process, Start waits for the
// child itself and hands its exit over the same way.
func TestStartNoReaper(t *testing.T) {
	var none *Reaper
	pid, done := start(t, none, "exit 6")
	if r := await(t, done, "exit of the child"); r.PID != pid || r.Code() != 6 {
		t.Fatalf("exit %+v, want pid %d code 6", r, pid)
	}
	pid, done = start(t, none, "kill -KILL $$")
	if r := await(t, done, "exit of the child"); r.PID != pid || r.Code() != 137 {
		t.Fatalf("exit %+v, want pid %d code 137", r, pid)
	}
}

// TestStartRefusesPipes: a stdio that exec would copy through a goroutine
// (which only cmd.Wait ends) is refused, and nothing is started.
func TestStartRefusesPipes(t *testing.T) {
	rp, _ := newReaper(t)
	for _, r := range []*Reaper{rp, nil} {
		cmd := exec.Command("/bin/true")
		cmd.Stdout = new(strings.Builder)
		if err := r.Start(cmd, func(Reaped) { t.Error("watcher of a refused command called") }); !errors.Is(err, ErrNotFile) {
			t.Fatalf("Start with a strings.Builder for stdout: %v, want ErrNotFile", err)
		}
		if cmd.Process != nil {
			t.Fatal("a refused command was started")
		}
	}
}

// TestStartExitBeforeSubscribe: a child that has exited, with its SIGCHLD
// come and a reap asked for, before Start has subscribed to it, still
// gets its exit to its starter, not to OnOrphan.
func TestStartExitBeforeSubscribe(t *testing.T) {
	rp, orphans := newReaper(t)
	reaped := make(chan bool, 1)
	rp.forked = func(pid int) {
		exited(t, pid)
		go func() { reaped <- rp.ReapNow() }()
	}
	pid, done := start(t, rp, "exit 2")
	if r := await(t, done, "exit of the child"); r.PID != pid || r.Code() != 2 {
		t.Fatalf("exit %+v, want pid %d code 2", r, pid)
	}
	await(t, reaped, "the reap asked for before the subscription")
	never(t, orphans, "orphan")
	never(t, done, "second exit")
}

// TestStartTracedStop: the stop of a traced child (the user-namespace
// helper's, at its exec) is not its exit; its exit comes once it is
// killed.
func TestStartTracedStop(t *testing.T) {
	rp, orphans := newReaper(t)
	done := make(chan Reaped, 2)
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	// The stop is awaited while Start holds the reaper off, so the
	// reaper's wait4, which a traced child's stop also answers, cannot
	// take it first.
	var stopErr error
	rp.forked = func(pid int) {
		var info unix.Siginfo
		stopErr = unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WNOWAIT, nil)
	}
	if err := rp.Start(cmd, func(r Reaped) { done <- r }); err != nil {
		t.Fatal(err)
	}
	if stopErr != nil {
		t.Fatalf("waitid for the traced child's stop: %v", stopErr)
	}
	if !rp.ReapNow() {
		t.Fatal("ReapNow: no child left, want the stopped one")
	}
	never(t, done, "exit of a stopped child")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if r := await(t, done, "exit of the killed child"); r.Code() != 137 {
		t.Fatalf("exit %+v, want code 137", r)
	}
	never(t, orphans, "orphan")
}

// threadHolds reports whether a thread of this process has pid in the
// innermost PID namespace (the NSpid line's last field: the /proc here is
// the host's).
func threadHolds(t *testing.T, pid int) bool {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // the thread is gone
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" && f[len(f)-1] == strconv.Itoa(pid) {
				return true
			}
		}
	}
	return false
}

// pidnsEnv marks the run of this test binary in a PID namespace of its own.
const pidnsEnv = "REAPER_TEST_PIDNS"

// TestStartPIDReuse: a child that gets the PID of one reaped before gets
// its own exit, not the earlier one's, and a watch left on that PID is
// not called. The PID is reused on purpose, through ns_last_pid, in a PID
// namespace of the test's own.
func TestStartPIDReuse(t *testing.T) {
	if os.Getenv(pidnsEnv) == "" {
		if os.Geteuid() != 0 {
			t.Skip("a PID namespace of the test's own needs root")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestStartPIDReuse$", "-test.v")
		cmd.Env = append(os.Environ(), pidnsEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID, Pdeathsig: unix.SIGKILL}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestStartPIDReuse") {
			t.Fatalf("in a PID namespace: %v\n%s", err, out)
		}
		return
	}
	if os.Getpid() != 1 {
		t.Fatalf("pid %d, want 1 in a PID namespace of its own", os.Getpid())
	}
	rp, orphans := newReaper(t)
	first, firstDone := start(t, rp, "exit 3")
	if r := await(t, firstDone, "exit of the first child"); r.Code() != 3 {
		t.Fatalf("first child: %+v, want code 3", r)
	}
	stale := func(pid int) {
		rp.Watch(pid, func(r Reaped) { t.Errorf("stale watch of pid %d called with %+v", pid, r) })
	}
	stale(first)
	earlier := []chan Reaped{firstDone}
	// Threads of the Go runtime take PIDs too: try until the fork gets it.
	// A thread made after the first child's reap may hold its PID for good:
	// then the child just reaped takes the first one's part.
	for try := 0; ; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(first-1)), 0); err != nil {
			t.Fatal(err)
		}
		pid, done := start(t, rp, "exit 4")
		r := await(t, done, "exit of the second child")
		if r.PID != pid || r.Code() != 4 {
			t.Fatalf("second child %d: exit %+v, want its own, code 4", pid, r)
		}
		if pid == first {
			break
		}
		if try == 200 {
			t.Fatalf("pid %d never reused", first)
		}
		if threadHolds(t, first) {
			first = pid
			stale(first)
			earlier = append(earlier, done)
		}
	}
	for _, done := range earlier {
		never(t, done, "second exit for an earlier child")
	}
	never(t, orphans, "orphan")
}
