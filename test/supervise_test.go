package test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/supervisor"
)

// tree is a linuxkit-style containers tree for moor supervise, with a
// shared directory every task sees at /shared.
type tree struct {
	Dir    string
	Shared string
	Logs   string
}

func newTree(t *testing.T) *tree {
	t.Helper()
	dir := filepath.Join(scratch, taskID(t))
	tr := &tree{Dir: filepath.Join(dir, "containers"), Shared: filepath.Join(dir, "shared"), Logs: filepath.Join(dir, "logs")}
	for _, d := range []string{tr.Dir, tr.Shared} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return tr
}

// add writes a bundle under kind ("onboot" or "services") named name,
// running script in sh, with the given annotations.
func (tr *tree) add(t *testing.T, kind, name, script string, annotations map[string]string) *bundle {
	t.Helper()
	b := newBundle(t, "sh", "-c", script)
	b.Dir = filepath.Join(tr.Dir, kind, name)
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimLeft(name, "0123456789")
	b.ID = strings.TrimPrefix(id, "-")
	if name[0] < '0' || name[0] > '9' {
		b.ID = name
	}
	b.Spec.Linux.CgroupsPath = cgroupParent + "/" + taskID(t)
	b.Spec.Annotations = annotations
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: tr.Shared, Options: []string{"rbind", "rw"}})
	requirePidNS(t, b.Spec)
	b.write(t)
	return b
}

// requirePidNS refuses to go on with a spec that would run a task in the
// host's PID namespace: these tests call reboot(2) inside tasks.
func requirePidNS(t *testing.T, s *specs.Spec) {
	t.Helper()
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return
		}
	}
	t.Fatal("test task without its own PID namespace")
}

// supervise is a running `moor supervise`.
type supervise struct {
	cmd    *exec.Cmd
	target int // the PID to signal, when not cmd's own
	out    *os.File
	done   chan error
}

func (tr *tree) start(t *testing.T, env []string, extra ...string) *supervise {
	t.Helper()
	args := append([]string{"supervise", "--containers", tr.Dir, "--log-dir", tr.Logs}, extra...)
	return startSupervise(t, exec.Command(moorBin, append([]string{"--root", stateRoot, "--cgroup-parent", cgroupParent}, args...)...), env)
}

func startSupervise(t *testing.T, cmd *exec.Cmd, env []string) *supervise {
	t.Helper()
	s := &supervise{cmd: cmd, out: tempFile(t), done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.signal(unix.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				t.Errorf("supervisor %d ignored SIGTERM: killing it", s.cmd.Process.Pid)
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", s.log(t))
		}
		s.out.Close()
		for _, st := range listTasks(t, supervisor.SystemNamespace) {
			moor(t, "--namespace", supervisor.SystemNamespace, "delete", "--force", st.ID)
		}
		// The next test's supervisor is a new boot's: it runs its onboot.
		if err := os.Remove(supervisor.JournalPath(stateRoot, supervisor.SystemNamespace)); err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
	})
	return s
}

func (s *supervise) log(t *testing.T) string {
	b, _ := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(s.out.Fd())))
	return string(b)
}

func (s *supervise) signal(sig unix.Signal) error {
	if s.target != 0 {
		return unix.Kill(s.target, sig)
	}
	return s.cmd.Process.Signal(sig)
}

// stop sends sig and returns the supervisor's exit code.
func (s *supervise) stop(t *testing.T, sig unix.Signal) int {
	t.Helper()
	if err := s.signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatalf("supervisor did not exit after %v", sig)
		return -1
	}
}

func listTasks(t *testing.T, ns string) []lifecycle.State {
	t.Helper()
	var states []lifecycle.State
	if err := json.Unmarshal([]byte(mustMoor(t, "--namespace", ns, "list", "--format", "json")), &states); err != nil {
		t.Fatal(err)
	}
	return states
}

// sysState reads a task of the supervisor's namespace.
func sysState(t *testing.T, id string) (lifecycle.State, bool) {
	t.Helper()
	r := moor(t, "--namespace", supervisor.SystemNamespace, "state", id)
	var st lifecycle.State
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		return st, false
	}
	return st, true
}

func waitRunning(t *testing.T, id string, notPID int) lifecycle.State {
	t.Helper()
	var st lifecycle.State
	waitFor(t, 20*time.Second, "service "+id+" running", func() bool {
		var ok bool
		st, ok = sysState(t, id)
		return ok && st.Status == lifecycle.Running && st.PID != notPID
	})
	return st
}

func readShared(tr *tree, name string) string {
	b, _ := os.ReadFile(filepath.Join(tr.Shared, name))
	return string(b)
}

const trapTerm = `trap "echo %s >> /shared/stopped; exit 0" TERM; while :; do sleep 0.05; done`

// TestSuperviseAcceptance: onboot finishes before the service starts; a
// SIGKILLed anchor under moor.restart=always comes back with a new PID;
// SIGTERM to the supervisor stops the service with SIGTERM and exits 0,
// leaving nothing behind.
func TestSuperviseAcceptance(t *testing.T) {
	tr := newTree(t)
	tr.add(t, "onboot", "001-prepare", `sleep 0.3; echo done > /shared/onboot`, nil)
	tr.add(t, "services", "010-web", `cat /shared/onboot > /shared/web-saw 2>&1; `+fmt.Sprintf(trapTerm, "web"),
		map[string]string{supervisor.RestartAnnotation: "always"})
	sup := tr.start(t, nil)

	first := waitRunning(t, "web", 0)
	waitFor(t, 10*time.Second, "the service to look for onboot's file", func() bool {
		return strings.HasSuffix(readShared(tr, "web-saw"), "\n")
	})
	if got := readShared(tr, "web-saw"); got != "done\n" {
		t.Fatalf("the service started before onboot finished: it saw %q", got)
	}
	if err := unix.Kill(first.PID, unix.SIGKILL); err != nil { // our own task's anchor
		t.Fatal(err)
	}
	second := waitRunning(t, "web", first.PID)
	if second.Restarts != 1 {
		t.Fatalf("after one restart: restarts %d", second.Restarts)
	}
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("supervisor exit %d after SIGTERM", code)
	}
	if got := readShared(tr, "stopped"); got != "web\n" {
		t.Fatalf("the service did not get SIGTERM: %q", got)
	}
	if alive(second.PID) {
		t.Fatalf("anchor %d alive after shutdown", second.PID)
	}
	if n := len(listTasks(t, supervisor.SystemNamespace)); n != 0 {
		t.Fatalf("%d tasks left after shutdown", n)
	}
	if out, _ := os.ReadFile(filepath.Join(tr.Logs, "prepare.log")); len(out) != 0 {
		t.Logf("onboot log: %s", out)
	}
}

// noZombieChildren: no zombie has pid as its parent.
func noZombieChildren(t *testing.T, pid int) bool {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+2:]))
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			t.Logf("zombie %d, child of %d", p, pid)
			return false
		}
	}
	return true
}

// TestSupervisePID1: moor supervise as PID 1 of its own PID namespace reaps
// the orphans a task leaves (a double fork, then the anchor exits), stops
// services in reverse start order, and exits 0. Its records hold PIDs of
// its namespace, so the test reads them from inside it, with nsenter.
func TestSupervisePID1(t *testing.T) {
	unshare, err1 := exec.LookPath("unshare")
	nsenter, err2 := exec.LookPath("nsenter")
	if err1 != nil || err2 != nil {
		t.Fatalf("unshare and nsenter (util-linux) are needed: %v %v", err1, err2)
	}
	tr := newTree(t)
	tr.add(t, "services", "010-a", fmt.Sprintf(trapTerm, "a"), nil)
	tr.add(t, "services", "020-b", fmt.Sprintf(trapTerm, "b"), nil)
	tr.add(t, "services", "030-forker", `sh -c "sleep 1000 &" ; sleep 1000 & echo forked > /shared/forker; exit 0`, nil)
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child",
		moorBin, "--root", stateRoot, "--cgroup-parent", cgroupParent, "supervise", "--containers", tr.Dir, "--log-dir", tr.Logs)
	sup := startSupervise(t, cmd, nil)
	moorPID := childOf(t, cmd.Process.Pid)
	sup.target = moorPID
	if ns, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", moorPID)); !strings.Contains(string(ns), "NSpid:\t"+strconv.Itoa(moorPID)+"\t1\n") {
		t.Fatalf("moor is not PID 1 of its namespace:\n%s", ns)
	}
	inside := func(id string) (lifecycle.State, bool) {
		out, err := exec.Command(nsenter, "--target", strconv.Itoa(moorPID), "--pid", "--mount",
			moorBin, "--root", stateRoot, "--namespace", supervisor.SystemNamespace, "state", id).Output()
		var st lifecycle.State
		return st, err == nil && json.Unmarshal(out, &st) == nil
	}
	waitFor(t, 20*time.Second, "services a and b to run and the forker to exit", func() bool {
		a, _ := inside("a")
		b, _ := inside("b")
		f, ok := inside("forker")
		return ok && f.Status == lifecycle.Stopped && a.Status == lifecycle.Running && b.Status == lifecycle.Running
	})
	waitFor(t, 10*time.Second, "the forker's orphans to be reaped", func() bool {
		return noZombieChildren(t, moorPID) && len(children(moorPID)) == 2
	})
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if got := readShared(tr, "stopped"); got != "b\na\n" {
		t.Fatalf("stop order %q, want b then a", got)
	}
}

// children lists the child processes of pid, over all its threads.
func children(pid int) []int {
	// Each thread lists the children it forked (or was handed as orphans).
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, file := range files {
		b, _ := os.ReadFile(file)
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
	}
	return out
}

func childOf(t *testing.T, pid int) int {
	t.Helper()
	var kids []int
	waitFor(t, 5*time.Second, "unshare's child", func() bool { kids = children(pid); return len(kids) == 1 })
	return kids[0]
}

// TestSuperviseRebootPoweroff: reboot -f inside a task restarts it whatever
// the policy; poweroff -f stops it for good whatever the policy.
func TestSuperviseRebootPoweroff(t *testing.T) {
	tr := newTree(t)
	withBoot := func(b *bundle) {
		c := b.Spec.Process.Capabilities
		for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted} {
			*set = append(*set, "CAP_SYS_BOOT")
		}
		b.write(t)
	}
	withBoot(tr.add(t, "services", "reboots", `echo run >> /shared/reboots; [ $(wc -l < /shared/reboots) -lt 2 ] && reboot -f; `+fmt.Sprintf(trapTerm, "reboots"),
		map[string]string{supervisor.RestartAnnotation: "no"}))
	withBoot(tr.add(t, "services", "powers-off", `echo run >> /shared/poweroffs; poweroff -f; sleep 1000`,
		map[string]string{supervisor.RestartAnnotation: "always"}))
	sup := tr.start(t, nil)
	st := waitRunning(t, "reboots", 0)
	waitFor(t, 20*time.Second, "the rebooted task to come back", func() bool {
		st, _ = sysState(t, "reboots")
		return st.Status == lifecycle.Running && st.Restarts == 1
	})
	var off lifecycle.State
	ok := false
	waitFor(t, 10*time.Second, "the powered-off task to stop", func() bool {
		off, ok = sysState(t, "powers-off")
		return ok && exitRecorded(off)
	})
	if !ok || off.Status != lifecycle.Stopped || off.Exit == nil || off.Exit.Signal != "SIGINT" || off.Restarts != 0 {
		t.Fatalf("powered-off task: %+v (exit %+v), want stopped by SIGINT, not restarted", off, off.Exit)
	}
	if got := readShared(tr, "poweroffs"); got != "run\n" {
		t.Fatalf("powered-off task ran %q", got)
	}
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSuperviseReconcile: SIGHUP starts new services, stops removed ones and
// restarts changed ones.
func TestSuperviseReconcile(t *testing.T) {
	tr := newTree(t)
	keep := tr.add(t, "services", "keep", fmt.Sprintf(trapTerm, "keep"), nil)
	change := tr.add(t, "services", "change", fmt.Sprintf(trapTerm, "change"), nil)
	remove := tr.add(t, "services", "remove", fmt.Sprintf(trapTerm, "remove"), nil)
	sup := tr.start(t, nil)
	k, c := waitRunning(t, "keep", 0), waitRunning(t, "change", 0)
	waitRunning(t, "remove", 0)

	if err := os.RemoveAll(remove.Dir); err != nil {
		t.Fatal(err)
	}
	change.Spec.Annotations = map[string]string{"version": "2"}
	change.write(t)
	tr.add(t, "services", "added", fmt.Sprintf(trapTerm, "added"), nil)
	if err := sup.signal(unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, "added", 0)
	c2 := waitRunning(t, "change", c.PID)
	waitFor(t, 10*time.Second, "the removed service to go", func() bool { _, ok := sysState(t, "remove"); return !ok })
	if k2, _ := sysState(t, "keep"); k2.PID != k.PID {
		t.Fatalf("unchanged service restarted: %d → %d", k.PID, k2.PID)
	}
	if c2.Annotations["version"] != "2" {
		t.Fatalf("changed service runs the old spec: %v", c2.Annotations)
	}
	_ = keep
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSuperviseAdoption: a new supervisor over the same root adopts the
// running services of one that was SIGKILLed, instead of starting them
// twice, and still stops them at shutdown.
func TestSuperviseAdoption(t *testing.T) {
	tr := newTree(t)
	tr.add(t, "services", "steady", fmt.Sprintf(trapTerm, "steady"), map[string]string{supervisor.RestartAnnotation: "always"})
	first := tr.start(t, nil)
	st := waitRunning(t, "steady", 0)
	if code := first.stop(t, unix.SIGKILL); code != -1 && code != 137 {
		t.Logf("killed supervisor exit %d", code)
	}
	if !alive(st.PID) {
		t.Fatal("the service died with its supervisor")
	}
	second := tr.start(t, nil)
	waitFor(t, 10*time.Second, "the new supervisor to be up", func() bool { return strings.Contains(second.log(t), "services started") })
	if now, _ := sysState(t, "steady"); now.PID != st.PID || now.Status != lifecycle.Running {
		t.Fatalf("after adoption: %+v, want the same anchor %d running", now, st.PID)
	}
	if n := len(listTasks(t, supervisor.SystemNamespace)); n != 1 {
		t.Fatalf("%d tasks after adoption, want 1", n)
	}
	// The adopted anchor's exit is seen through its pidfd: always restarts it.
	if err := unix.Kill(st.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, "steady", st.PID)
	// The new shell traps TERM once it runs its script: wait for its
	// loop's first sleep, a child of it, so the stop finds the trap set.
	restarted, _ := sysState(t, "steady")
	waitFor(t, 10*time.Second, "the restarted service to set its trap", func() bool { return len(children(restarted.PID)) > 0 })
	if code := second.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got := readShared(tr, "stopped"); got != "steady\n" {
		t.Fatalf("stopped %q", got)
	}
}

// TestSuperviseNotifyAndDump: sd_notify READY=1, WATCHDOG=1 and STOPPING=1
// reach a socket the test owns; SIGUSR1 writes a status dump.
func TestSuperviseNotifyAndDump(t *testing.T) {
	tr := newTree(t)
	tr.add(t, "services", "svc", fmt.Sprintf(trapTerm, "svc"), nil)
	sockPath := filepath.Join(filepath.Dir(tr.Dir), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	sup := tr.start(t, []string{"NOTIFY_SOCKET=" + sockPath, "WATCHDOG_USEC=200000"})
	expect := func(want string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-msgs:
				if slices.Contains(strings.Split(m, "\n"), want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s on the notify socket", want)
			}
		}
	}
	expect("READY=1")
	st := waitRunning(t, "svc", 0)
	expect("WATCHDOG=1")

	if err := sup.signal(unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	dumpPath := filepath.Join(stateRoot, "status-"+supervisor.SystemNamespace+".json")
	var dump []supervisor.DumpEntry
	waitFor(t, 10*time.Second, "the status dump", func() bool {
		b, err := os.ReadFile(dumpPath)
		return err == nil && json.Unmarshal(b, &dump) == nil && len(dump) == 1
	})
	if d := dump[0]; d.ID != "svc" || d.PID != st.PID || d.Status != lifecycle.Running || d.RSSKiB == 0 {
		t.Fatalf("dump entry %+v", d)
	}
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	expect("STOPPING=1")
	if _, err := os.Stat(dumpPath); !os.IsNotExist(err) {
		t.Fatal("status dump left after shutdown")
	}
}

// TestSuperviseLogsAndOOM: a task's output goes to its log, which is
// rotated past --log-max-size; an OOM-killed service shows reason oom.
func TestSuperviseLogsAndOOM(t *testing.T) {
	tr := newTree(t)
	tr.add(t, "services", "chatty", `trap "exit 0" TERM; while :; do i=0; while [ $i -lt 200 ]; do echo "line $i of a chatty service, padded to be long enough"; i=$((i+1)); done; sleep 0.05; done`, nil)
	hog := tr.add(t, "services", "hog", `dd if=/dev/zero of=/dev/null bs=64M count=1`, nil)
	limit := int64(16 << 20)
	hog.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	hog.write(t)
	sup := tr.start(t, nil, "--log-max-size", "32KiB", "--log-keep", "2")
	waitFor(t, 20*time.Second, "the hog to be OOM-killed", func() bool {
		st, ok := sysState(t, "hog")
		return ok && st.Status == lifecycle.Stopped && st.Exit != nil && st.Exit.Reason == lifecycle.ExitOOM
	})
	waitFor(t, 20*time.Second, "the chatty log to rotate", func() bool {
		_, err1 := os.Stat(filepath.Join(tr.Logs, "chatty.log.1"))
		_, err2 := os.Stat(filepath.Join(tr.Logs, "chatty.log.2"))
		return err1 == nil && err2 == nil
	})
	if _, err := os.Stat(filepath.Join(tr.Logs, "chatty.log.3")); !os.IsNotExist(err) {
		t.Fatal("more rotated logs than --log-keep")
	}
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSupervise100: one supervisor holds 100 services with a constant
// number of threads.
func TestSupervise100(t *testing.T) {
	tr := newTree(t)
	for i := range 100 {
		tr.add(t, "services", fmt.Sprintf("svc%03d", i), `trap "exit 0" TERM; sleep 1000 & wait`, nil)
	}
	sup := tr.start(t, nil)
	waitFor(t, 120*time.Second, "100 services running", func() bool {
		n := 0
		for _, st := range listTasks(t, supervisor.SystemNamespace) {
			if st.Status == lifecycle.Running {
				n++
			}
		}
		return n == 100
	})
	waitNoThreadInTasks(t, sup.cmd.Process.Pid)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", sup.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	threads := 0
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	fmt.Printf("figure: supervisor threads holding 100 services: %d\n", threads)
	if threads > 16 {
		t.Fatalf("%d threads for 100 services: the thread count grows with tasks", threads)
	}
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// waitNoThreadInTasks waits until no thread of the supervisor pid is in
// a task's mount namespace.
//
// Each create leaves one there for a moment, by design of libcontainer:
// its initProcess.start runs a goroutine that locks its thread, joins the
// new task's mount namespace to open mount sources for runc init, and
// never unlocks, so that Go ends the thread when the goroutine returns.
// The goroutine returns only after start has returned (start's deferred
// cancel closes its request channel), so the thread outlives the create
// until the goroutine is scheduled again and the thread exits: with two
// busy loops beside 100 services starting, such threads were seen for
// 0.1 to 280 ms (median 30 ms), and none was left once the services ran.
// The main thread never takes that goroutine (moor locks it to main's
// goroutine from init; there Go would park the thread for good, as it
// did once in 40 runs beside two busy loops when the lock was taken in
// main, after the goroutine could have moved). So the
// check waits, with a deadline; a thread that stays is a bug.
func waitNoThreadInTasks(t *testing.T, pid int) {
	t.Helper()
	ours, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	var foreign []string
	defer func() {
		if t.Failed() {
			t.Logf("supervisor threads not in the host's mount namespace %s: %v", ours, foreign)
		}
	}()
	waitFor(t, 10*time.Second, "every supervisor thread back in the host's mount namespace", func() bool {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatal(err)
		}
		foreign = foreign[:0]
		for _, task := range tasks {
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/task/%s/ns/mnt", pid, task.Name()))
			if err == nil && ns != ours {
				what := "thread " + task.Name()
				if task.Name() == strconv.Itoa(pid) {
					what += " (the main thread)"
				}
				foreign = append(foreign, what+" in "+ns)
			}
		}
		return len(foreign) == 0
	})
}

// TestSuperviseOnFailure: on-failure:N restarts a failing service N times,
// with backoff, then leaves it stopped with its last exit; a clean exit is
// not restarted.
func TestSuperviseOnFailure(t *testing.T) {
	tr := newTree(t)
	tr.add(t, "services", "flaky", `echo run >> /shared/flaky; exit 3`, map[string]string{supervisor.RestartAnnotation: "on-failure:2"})
	tr.add(t, "services", "done", `echo run >> /shared/done; exit 0`, map[string]string{supervisor.RestartAnnotation: "on-failure"})
	sup := tr.start(t, nil)
	waitFor(t, 20*time.Second, "flaky to run three times and stay stopped", func() bool {
		st, ok := sysState(t, "flaky")
		return ok && st.Status == lifecycle.Stopped && st.Restarts == 2 && readShared(tr, "flaky") == "run\nrun\nrun\n"
	})
	st, _ := sysState(t, "flaky")
	if st.Exit == nil || st.Exit.Code != 3 || st.Exit.Reason != lifecycle.ExitCode {
		t.Fatalf("flaky's last exit %+v, want code 3", st.Exit)
	}
	waitFor(t, 10*time.Second, "the clean service to stop", func() bool {
		d, ok := sysState(t, "done")
		return ok && d.Status == lifecycle.Stopped
	})
	if d, ok := sysState(t, "done"); !ok || d.Status != lifecycle.Stopped || d.Restarts != 0 || readShared(tr, "done") != "run\n" {
		t.Fatalf("a clean exit under on-failure: %+v, ran %q", d, readShared(tr, "done"))
	}
	if !strings.Contains(sup.log(t), `in=100ms`) || !strings.Contains(sup.log(t), `in=200ms`) {
		t.Fatalf("no doubling backoff in the log:\n%s", sup.log(t))
	}
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSuperviseNoLimits: a linuxkit-built system tree's specs often carry
// no limits; such a service boots under moor supervise.
func TestSuperviseNoLimits(t *testing.T) {
	tr := newTree(t)
	b := tr.add(t, "services", "020-nolimits", `trap "exit 0" TERM; echo up > /shared/nolimits; sleep 60 & wait`, nil)
	b.Spec.Linux.Resources = nil
	b.write(t)
	sup := tr.start(t, nil)
	waitRunning(t, "nolimits", 0)
	waitFor(t, 10*time.Second, "the service without limits to run", func() bool {
		return readShared(tr, "nolimits") == "up\n"
	})
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("supervisor exit %d after SIGTERM", code)
	}
}
