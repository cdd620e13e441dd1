package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/rootfs"
)

// soakEnv, set to 1, makes the reliability tests run their long versions
// (make soak).
const soakEnv = "MOOR_SOAK"

// scaled is short in the ordinary suite and long under MOOR_SOAK=1.
func scaled(short, long int) int {
	if os.Getenv(soakEnv) == "1" {
		return long
	}
	return short
}

// traces lists what a task named id may have left behind: its state and
// scratch directories, mounts under them, the cgroups named (the task's
// and any parent moor made for it) in any hierarchy, and processes still
// in one of those cgroups. Empty means nothing is left.
func traces(t *testing.T, id string, cgroups ...string) []string {
	t.Helper()
	var left []string
	dirs := []string{
		filepath.Join(stateRoot, "default", id),
		filepath.Join(stateRoot, ".scratch", "default", id),
	}
	for _, d := range dirs {
		if _, err := os.Lstat(d); err == nil {
			left = append(left, "directory "+d+" "+dirList(d))
		}
	}
	for _, m := range mountsUnder(t, dirs...) {
		left = append(left, "mount "+m)
	}
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, cg := range cgroups {
		for _, h := range hier {
			if _, err := os.Stat(filepath.Join(h, cg)); err == nil {
				left = append(left, "cgroup "+filepath.Join(h, cg))
			}
		}
	}
	for _, pid := range processesIn(cgroups...) {
		left = append(left, fmt.Sprintf("process %d (%s) in a cgroup of the task", pid, procComm(pid)))
	}
	for _, f := range tempFiles() {
		left = append(left, "temporary file "+f)
	}
	return left
}

// tempFiles lists the hidden regular files in the state root and its
// namespace directories: what an atomic write killed half-way leaves.
func tempFiles() []string {
	var out []string
	for _, d := range []string{stateRoot, filepath.Join(stateRoot, "default")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// dirList names the entries of a directory, for a message.
func dirList(dir string) string {
	entries, _ := os.ReadDir(dir)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return "[" + strings.Join(names, " ") + "]"
}

// mountsUnder lists the mount points at or below any of dirs.
func mountsUnder(t *testing.T, dirs ...string) []string {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) <= 4 {
			continue
		}
		for _, d := range dirs {
			if f[4] == d || strings.HasPrefix(f[4], d+"/") {
				out = append(out, f[4])
				break
			}
		}
	}
	return out
}

// processesIn lists the live processes that sit, in some hierarchy, in
// one of the cgroups or below it. Zombies are left out: they hold nothing
// and are their reaper's to collect (the harness's, for anchors), and one
// may still name a cgroup already removed.
func processesIn(cgroups ...string) []int {
	if len(cgroups) == 0 {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) == 3 && slices.ContainsFunc(cgroups, func(cg string) bool {
				return f[2] == cg || strings.HasPrefix(f[2], cg+"/")
			}) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// requireNothingLeft fails the test now if the task left anything.
func requireNothingLeft(t *testing.T, what, id string, cgroups ...string) {
	t.Helper()
	if left := traces(t, id, cgroups...); len(left) > 0 {
		t.Fatalf("%s left behind:\n  %s", what, strings.Join(left, "\n  "))
	}
}

// scrub deletes the task with delete --force and then, should moor have
// left anything, removes it by hand (a failure is reported already): the
// processes in the task's cgroups, mounts under its directories, the
// directories and the cgroups, so that one failing case does not spoil
// the rest of the run.
func scrub(t *testing.T, id string, cgroups ...string) {
	t.Helper()
	moor(t, "delete", "--force", id)
	removeLeftovers(t, id, cgroups...)
}

// removeLeftovers is scrub's part by hand.
func removeLeftovers(t *testing.T, id string, cgroups ...string) {
	t.Helper()
	left := traces(t, id, cgroups...)
	if len(left) == 0 {
		return
	}
	t.Logf("removing by hand what moor left of %s:\n  %s", id, strings.Join(left, "\n  "))
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, cg := range cgroups {
		for _, h := range hier {
			_ = os.WriteFile(filepath.Join(h, cg, "freezer.state"), []byte("THAWED"), 0o644)
		}
	}
	waitFor(t, 10*time.Second, "the processes left in the task's cgroups to die", func() bool {
		pids := processesIn(cgroups...)
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		return len(pids) == 0
	})
	dirs := []string{filepath.Join(stateRoot, "default", id), filepath.Join(stateRoot, ".scratch", "default", id)}
	mounts := mountsUnder(t, dirs...)
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mounts[i], err)
		}
	}
	for _, d := range append(dirs, tempFiles()...) {
		if err := os.RemoveAll(d); err != nil {
			t.Errorf("remove %s: %v", d, err)
		}
	}
	for _, cg := range cgroups {
		for _, h := range hier {
			removeCgroupTree(filepath.Join(h, cg))
		}
	}
	if left := traces(t, id, cgroups...); len(left) > 0 {
		t.Errorf("could not remove what moor left of %s:\n  %s", id, strings.Join(left, "\n  "))
	}
}

// removeCgroupTree removes a cgroup directory and the cgroups below it,
// deepest first (cgroupfs directories go with rmdir, not unlink).
func removeCgroupTree(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = unix.Rmdir(dir)
}

// openFDs counts the test process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// strays lists the processes the harness's reaper holds besides the test
// process itself: anchors (and what they left) of tasks not yet deleted.
func strays() []int {
	var out []int
	for _, pid := range children(os.Getppid()) {
		if pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// waitNoStrays waits until the reaper holds no process but the test and
// no zombie is left for it or the test to reap.
func waitNoStrays(t *testing.T, what string) {
	t.Helper()
	waitFor(t, 10*time.Second, "no process or zombie left by "+what, func() bool {
		s := strays()
		for _, pid := range s {
			t.Logf("left: process %d (%s), state %s", pid, procComm(pid), procState(pid))
		}
		return len(s) == 0 && noZombieChildren(t, os.Getpid()) && noZombieChildren(t, os.Getppid())
	})
}

// procState is the state letter of /proc/<pid>/stat ("" when gone).
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || len(b) < i+3 {
		return ""
	}
	return string(b[i+2])
}

// median, p90 and the maximum of durations, for the figures.
func durationFigures(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	ms := func(v time.Duration) string { return fmt.Sprintf("%.1f ms", float64(v)/1e6) }
	return fmt.Sprintf("median %s, p90 %s, max %s over %d", ms(s[len(s)/2]), ms(s[len(s)*9/10]), ms(s[len(s)-1]), len(s))
}

// writableBundle is newBundle's task with a writable root: an overlay in
// the task's scratch directory (rootfs/README.md).
func writableBundle(t *testing.T, args ...string) *bundle {
	t.Helper()
	b := newBundle(t, args...)
	b.Spec.Annotations = map[string]string{rootfs.WritableAnnotation: "true"}
	return b
}

// TestCycles: N create/start/kill/delete cycles, alternating a read-only
// and a writable root, leave no mount, cgroup, state, scratch, process,
// zombie or file descriptor behind; the figures are printed. N is 50, or
// 1000 under MOOR_SOAK=1.
func TestCycles(t *testing.T) {
	n := scaled(50, 1000)
	kinds := []*bundle{newBundle(t, "sleep", "1000"), writableBundle(t, "sleep", "1000")}
	for _, b := range kinds {
		b.write(t)
		t.Cleanup(func() { scrub(t, b.ID, b.Spec.Linux.CgroupsPath) })
	}
	runDir := filepath.Dir(stateRoot)
	fds, mounts := openFDs(t), len(mountsUnder(t, runDir))
	times := make([]time.Duration, 0, n)
	for i := range n {
		b := kinds[i%len(kinds)]
		start := time.Now()
		mustMoor(t, "create", "--bundle", b.Dir, b.ID)
		mustMoor(t, "start", b.ID)
		mustMoor(t, "kill", b.ID, "KILL")
		waitStatus(t, b.ID, lifecycle.Stopped)
		mustMoor(t, "delete", b.ID)
		times = append(times, time.Since(start))
		requireNothingLeft(t, fmt.Sprintf("cycle %d", i), b.ID, b.Spec.Linux.CgroupsPath)
	}
	waitNoStrays(t, "the cycles")
	fdsAfter, mountsAfter := openFDs(t), len(mountsUnder(t, runDir))
	t.Logf("figure: %d create/start/kill/delete cycles: %s; no cgroup, state, scratch, process or zombie left; fds of the test %d → %d, mounts %d → %d",
		n, durationFigures(times), fds, fdsAfter, mounts, mountsAfter)
	if fdsAfter != fds || mountsAfter != mounts {
		t.Errorf("the cycles leaked file descriptors or mounts")
	}
}
