package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lf-edge/moor/lifecycle"
)

// pidNamespace is a PID namespace of the test's own: unshare's child,
// catatonit, is its init and reaps what is orphaned in it. moor runs in it
// through nsenter, so the PIDs it records and reads are the namespace's.
type pidNamespace struct {
	init    int // host PID of the namespace's init
	nsenter string
}

func newPIDNamespace(t *testing.T) *pidNamespace {
	t.Helper()
	var tools []string
	for _, name := range []string{"unshare", "nsenter", "catatonit"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s is needed (util-linux, catatonit): %v", name, err)
		}
		tools = append(tools, p)
	}
	cmd := exec.Command(tools[0], "--pid", "--fork", "--mount-proc", "--kill-child", tools[2], "-P")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// unshare ignores SIGTERM while it waits; its SIGKILL makes the
		// kernel kill its child (--kill-child), the namespace's init, and
		// with it every process of the namespace.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &pidNamespace{init: childOf(t, cmd.Process.Pid), nsenter: tools[1]}
}

// run runs a command in the namespace (its PID and mount namespaces).
func (ns *pidNamespace) run(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command(ns.nsenter, append([]string{"--target", strconv.Itoa(ns.init), "--pid", "--mount"}, args...)...))
}

// moor runs moor with the test's state root in the namespace.
func (ns *pidNamespace) moor(t *testing.T, args ...string) result {
	t.Helper()
	return ns.run(t, append([]string{moorBin, "--root", stateRoot}, args...)...)
}

// hostPID is the host PID of the namespace's process pid, among the
// init's children.
func (ns *pidNamespace) hostPID(t *testing.T, pid int) int {
	t.Helper()
	for _, c := range children(ns.init) {
		if f := nsPIDs(c); len(f) >= 2 && f[1] == pid {
			return c
		}
	}
	t.Fatalf("no child of the namespace's init %d has PID %d in it", ns.init, pid)
	return 0
}

// spawnAt starts a stranger, sleep, that gets PID pid in the namespace:
// ns_last_pid is set to the PID before it, then the shell forks. It
// returns the stranger's host PID.
func (ns *pidNamespace) spawnAt(t *testing.T, pid int) int {
	t.Helper()
	for range 5 {
		r := ns.run(t, "sh", "-c", `echo "$1" > /proc/sys/kernel/ns_last_pid; sleep 1000 & echo $!`, "sh", strconv.Itoa(pid-1))
		got, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
		if r.Code != 0 || err != nil {
			t.Fatalf("spawn a process at PID %d: %v", pid, r)
		}
		if got == pid {
			return ns.hostPID(t, pid)
		}
		t.Logf("the stranger got PID %d, not %d: another fork came first; again", got, pid)
	}
	t.Fatalf("could not give a process PID %d", pid)
	return 0
}

// nsPIDs is the NSpid line of /proc/<pid>/status: the PID in each
// namespace, the host's first.
func nsPIDs(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			var out []int
			for _, f := range strings.Fields(v) {
				n, _ := strconv.Atoi(f)
				out = append(out, n)
			}
			return out
		}
	}
	return nil
}

// procStartTime is field 22 of /proc/<pid>/stat.
func procStartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(b), ')')
	if f := strings.Fields(string(b[i+2:])); len(f) > 19 {
		return f[19]
	}
	return ""
}

// freezerState is the freezer.state of pid's v1 freezer cgroup ("" when
// it has none or sits in the root).
func freezerState(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "freezer" && f[2] != "/" {
			s, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", f[2], "freezer.state"))
			return strings.TrimSpace(string(s))
		}
	}
	return ""
}

// TestPIDReuse: a task runs in a PID namespace the test made; its anchor
// is SIGKILLed and reaped, and a stranger is given the anchor's PID in
// that namespace through ns_last_pid. Every verb that takes a task
// reference, by name and by that PID, must leave the stranger alone (alive,
// not stopped, not frozen) and report the task stopped or refuse.
func TestPIDReuse(t *testing.T) {
	ns := newPIDNamespace(t)
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	t.Cleanup(func() {
		ns.moor(t, "delete", "--force", b.ID)
		removeLeftovers(t, b.ID, b.Spec.Linux.CgroupsPath)
	})
	if r := ns.moor(t, "run", "--detach", "--bundle", b.Dir, b.ID); r.Code != 0 {
		t.Fatalf("run --detach in the PID namespace: %v", r)
	}
	st := nsState(t, ns, b.ID)
	anchor := ns.hostPID(t, st.PID)
	if ids := nsPIDs(anchor); len(ids) != 3 || ids[1] != st.PID || ids[2] != 1 {
		t.Fatalf("the anchor's NSpid %v: want host, %d in the test's namespace, 1 in the task's", ids, st.PID)
	}
	if r := ns.moor(t, "kill", b.ID, "KILL"); r.Code != 0 {
		t.Fatalf("kill: %v", r)
	}
	waitFor(t, 10*time.Second, "the anchor to be reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", anchor))
		return os.IsNotExist(err)
	})
	if got := nsState(t, ns, b.ID); got.Status != lifecycle.Stopped {
		t.Fatalf("after the anchor died: %s, want stopped", got.Status)
	}

	stranger := ns.spawnAt(t, st.PID)
	born := procStartTime(stranger)
	t.Logf("the anchor was %d (host %d); the stranger has %d (host %d)", st.PID, anchor, st.PID, stranger)
	checkStranger := func(verb string) {
		t.Helper()
		if procStartTime(stranger) != born || !alive(stranger) {
			t.Fatalf("after %s: the stranger %d is gone", verb, stranger)
		}
		if s := procState(stranger); s != "S" && s != "R" {
			t.Fatalf("after %s: the stranger %d is in state %s (stopped or frozen)", verb, stranger, s)
		}
		if f := freezerState(stranger); f != "" && f != "THAWED" {
			t.Fatalf("after %s: the stranger's freezer cgroup is %s", verb, f)
		}
	}
	for _, ref := range []string{b.ID, strconv.Itoa(st.PID)} {
		for _, verb := range refVerbs(ref) {
			name := strings.Join(verb, " ")
			r := ns.moor(t, verb...)
			t.Logf("%s: exit %d, %s", name, r.Code, brief(r))
			if strings.Contains(r.Stderr, "panic:") || strings.Contains(r.Stderr, "goroutine ") {
				t.Errorf("%s panicked: %s", name, r.Stderr)
			}
			if r.Code != 0 && !strings.Contains(r.Stderr, "moor: ") {
				t.Errorf("%s: %v, want success or a clear refusal", name, r)
			}
			if verb[0] == "exec" && r.Code == 0 {
				t.Errorf("%s ran a process in a stopped task: %v", name, r)
			}
			if verb[0] == "ps" && slices.Contains(strings.FieldsFunc(r.Stdout, notDigit), strconv.Itoa(stranger)) {
				t.Errorf("%s lists the stranger %d: %v", name, stranger, r)
			}
			checkStranger(name)
			if got := nsState(t, ns, b.ID); got.Status != lifecycle.Stopped {
				t.Fatalf("after %s: the task reads %s, want stopped", name, got.Status)
			}
		}
	}
	list := ns.moor(t, "list", "--format", "json")
	if list.Code != 0 || !strings.Contains(list.Stdout, `"stopped"`) {
		t.Errorf("list: %v, want the task stopped", list)
	}
	// delete --force by the PID: the task goes, the stranger stays.
	if r := ns.moor(t, "delete", "--force", strconv.Itoa(st.PID)); r.Code != 0 {
		t.Errorf("delete --force by the reused PID: %v", r)
	}
	checkStranger("delete --force " + strconv.Itoa(st.PID))
	if r := ns.moor(t, "delete", "--force", b.ID); r.Code != 0 {
		t.Errorf("delete --force by name: %v", r)
	}
	checkStranger("delete --force " + b.ID)
	requireNothingLeft(t, "delete", b.ID, b.Spec.Linux.CgroupsPath)
	t.Logf("figure: %d verbs, by name and by the reused PID %d: the stranger was never signalled, stopped or frozen",
		2*len(refVerbs(b.ID))+2, st.PID)
}

// refVerbs are the verbs that take a task reference, with ref, that must
// not reach a process which took a dead anchor's PID.
func refVerbs(ref string) [][]string {
	return [][]string{
		{"state", ref},
		{"kill", ref},
		{"kill", ref, "KILL"},
		{"kill", ref, "STOP"},
		{"kill", ref, "USR1"},
		{"kill", "--all", ref, "KILL"},
		{"kill", "--all", ref, "STOP"},
		{"stop", "--timeout", "1s", ref},
		{"pause", ref},
		{"resume", ref},
		{"ps", "--format", "json", ref},
		{"exec", ref, "true"},
		{"update", "--memory", "100MiB", ref},
		{"events", "--stats", ref},
		{"info", ref},
	}
}

// brief is a result's stderr, or the start of its stdout, for a log line.
func brief(r result) string {
	if r.Stderr != "" {
		return "stderr " + strings.TrimSpace(r.Stderr)
	}
	out := strings.Join(strings.Fields(r.Stdout), " ")
	if len(out) > 120 {
		out = out[:120] + "…"
	}
	return "stdout " + out
}

func notDigit(r rune) bool { return r < '0' || r > '9' }

// nsState reads `moor state` in the namespace.
func nsState(t *testing.T, ns *pidNamespace, ref string) lifecycle.State {
	t.Helper()
	r := ns.moor(t, "state", ref)
	var st lifecycle.State
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		t.Fatalf("state %s in the namespace: %v", ref, r)
	}
	return st
}
