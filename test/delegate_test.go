package test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
)

// delegation is what a delegated task does inside, on one cgroup version:
// make a sub-cgroup with a smaller memory limit and run a hog in it, write
// a larger limit at its own root, run a hog there, then leave a populated
// sub-cgroup and a frozen one behind. Each step's exit status goes to a
// file in the task's /tmp.
type delegation struct {
	mem, limitFile string // the memory controller's directory inside; its limit file
	script         string
}

// The inside of the v1 (and hybrid) case: the task's root is
// /sys/fs/cgroup/<controller>.
var delegationV1 = delegation{mem: "/sys/fs/cgroup/memory", limitFile: "memory.limit_in_bytes", script: `
cd /sys/fs/cgroup/memory
mkdir sub
echo 8388608 > sub/memory.limit_in_bytes
sh -c 'echo $$ > /sys/fs/cgroup/memory/sub/cgroup.procs; exec dd if=/dev/zero of=/dev/null bs=16M count=1'
echo $? > /tmp/sub-hog
echo 1073741824 > memory.limit_in_bytes
echo $? > /tmp/raise
dd if=/dev/zero of=/dev/null bs=100M count=1
echo $? > /tmp/root-hog
sleep 100000 &
echo $! > sub/cgroup.procs
mkdir /sys/fs/cgroup/freezer/cold
sleep 100000 &
echo $! > /sys/fs/cgroup/freezer/cold/cgroup.procs
echo FROZEN > /sys/fs/cgroup/freezer/cold/freezer.state
`}

// The inside of the v2 case: processes leave the root first (a cgroup
// with controllers for its children holds no processes of its own).
var delegationV2 = delegation{mem: "/sys/fs/cgroup", limitFile: "memory.max", script: `
cd /sys/fs/cgroup
mkdir init sub cold
echo $$ > init/cgroup.procs
echo +memory > cgroup.subtree_control
echo 8388608 > sub/memory.max
sh -c 'echo $$ > /sys/fs/cgroup/sub/cgroup.procs; exec dd if=/dev/zero of=/dev/null bs=16M count=1'
echo $? > /tmp/sub-hog
echo 1073741824 > memory.max
echo $? > /tmp/raise
dd if=/dev/zero of=/dev/null bs=100M count=1
echo $? > /tmp/root-hog
sleep 100000 &
echo $! > sub/cgroup.procs
sleep 100000 &
echo $! > cold/cgroup.procs
echo 1 > cold/cgroup.freeze
`}

// TestDelegatedCgroupV1: on a cgroup v1 or hybrid host, a delegated task
// sees its cgroup as the root of each controller, makes a sub-cgroup,
// moves a process there and limits it (a hog there dies at the smaller
// limit); it may write a larger limit at its own root, but the limit moor
// set stays and holds (a hog dies at it); update changes the limit moor
// set; delete with a populated and a frozen sub-cgroup left behind leaves
// nothing.
func TestDelegatedCgroupV1(t *testing.T) {
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("cgroup v2 host: the v1 controllers this test drives are not mounted (TestDelegatedCgroupV2 runs instead)")
	}
	runDelegation(t, delegationV1)
}

// TestDelegatedCgroupV2: the same on a cgroup v2 host, where with the
// host's nsdelegate mount option the task may not even write its root's
// limits.
func TestDelegatedCgroupV2(t *testing.T) {
	if !cgroups.IsCgroup2UnifiedMode() {
		t.Skip("not a cgroup v2 host: this hybrid host's unified hierarchy has no controllers, so memory limits on v2 cannot be set here; TestDelegatedCgroupV1 covers delegation on it")
	}
	runDelegation(t, delegationV2)
}

func runDelegation(t *testing.T, d delegation) {
	b := newBundle(t, "sh", "-c", d.script+"echo ready > /tmp/ready\nexec sleep 100000\n")
	limit := int64(64 << 20)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	b.Spec.Annotations = map[string]string{lifecycle.DelegateAnnotation: "true"}
	pid := runDetached(t, b)
	inside := func(name string) string {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "root", "tmp", name))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	waitFor(t, 30*time.Second, "the task to set up its cgroups", func() bool { return inside("ready") != "" || !alive(pid) })
	if inside("ready") == "" {
		t.Fatalf("the task died before it was ready: %v", taskState(t, b.ID).Exit)
	}
	if st := taskState(t, b.ID); st.CgroupPath != cgroupParent+"/"+b.ID {
		t.Errorf("state's cgroupPath %q, want the delegated cgroup %s/%s", st.CgroupPath, cgroupParent, b.ID)
	}
	checkOwnRoot(t, pid)
	if got := inside("sub-hog"); got != "137" {
		t.Errorf("a 16 MiB hog in the task's 8 MiB sub-cgroup: status %q, want 137 (OOM-killed)", got)
	}
	if got := inside("root-hog"); got != "137" {
		t.Errorf("a 100 MiB hog at the task's root: status %q, want 137 (OOM-killed at the 64 MiB moor set)", got)
	}
	if got := cgroupFile(t, "memory", b.ID, d.limitFile); got != strconv.FormatInt(limit, 10) {
		t.Errorf("the limit moor set is %s after the task wrote its root's, want %d", got, limit)
	}
	if got := cgroupFile(t, "memory", b.ID, "task/sub/"+d.limitFile); got != "8388608" {
		t.Errorf("the task's sub-cgroup limit on the host: %s, want 8388608", got)
	}
	switch raise := inside("raise"); {
	case raise == "0":
		if got := cgroupFile(t, "memory", b.ID, "task/"+d.limitFile); got != "1073741824" {
			t.Errorf("the task's own root's limit %s after it wrote 1073741824", got)
		}
	case !nsdelegate(t):
		t.Errorf("writing its root's limit failed (%s) without nsdelegate", raise)
	}
	mustMoor(t, "update", "--memory", "48MiB", b.ID)
	if got := cgroupFile(t, "memory", b.ID, d.limitFile); got != strconv.Itoa(48<<20) {
		t.Errorf("after update --memory 48MiB the delegated cgroup's limit is %s, want %d", got, 48<<20)
	}
	checkDeleteTakesAll(t, b.ID, pid)
}

// checkOwnRoot: the task sees its cgroup as the root: every hierarchy's
// path in its /proc/self/cgroup is "/".
func checkOwnRoot(t *testing.T, pid int) {
	t.Helper()
	r := moor(t, "exec", strconv.Itoa(pid), "cat", "/proc/self/cgroup")
	if r.Code != 0 {
		t.Fatalf("exec cat /proc/self/cgroup: %v", r)
	}
	for _, line := range strings.Fields(r.Stdout) {
		if parts := strings.SplitN(line, ":", 3); len(parts) != 3 || parts[2] != "/" {
			t.Errorf("the task sees its cgroup as %q, want / everywhere:\n%s", line, r.Stdout)
		}
	}
}

// checkDeleteTakesAll deletes the task with processes left in cgroups it
// made (one of them frozen) and checks that they and the cgroup tree are
// gone.
func checkDeleteTakesAll(t *testing.T, id string, pid int) {
	t.Helper()
	hier := []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/freezer", "/sys/fs/cgroup"}
	var left []int
	for _, h := range hier {
		for _, sub := range []string{"sub", "cold"} {
			b, _ := os.ReadFile(filepath.Join(h, cgroupParent, id, "task", sub, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if p, err := strconv.Atoi(f); err == nil && !slices.Contains(left, p) {
					left = append(left, p)
				}
			}
		}
	}
	if len(left) < 2 {
		t.Fatalf("want processes left in the task's sub-cgroups before delete, found %v", left)
	}
	mustMoor(t, "delete", "--force", id)
	for _, p := range append(left, pid) {
		if alive(p) {
			t.Errorf("process %d of the deleted task is alive", p)
		}
	}
	if !cgroupGone(t, id) {
		t.Errorf("the delegated cgroup tree of %s is left", id)
	}
}

// nsdelegate reports whether the host's cgroup v2 is mounted with
// nsdelegate: then a task may not write its cgroup namespace root's
// limits.
func nsdelegate(t *testing.T) bool {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup2"))
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(mounts, func(m *mountinfo.Info) bool {
		return strings.Contains(","+m.VFSOptions+",", ",nsdelegate,") || strings.Contains(","+m.Options+",", ",nsdelegate,")
	})
}

// TestDelegatedCgroupInUserns: a delegated task in a user namespace gets
// its cgroup handed to its root (the mapped host ID owns it), so it can
// make a sub-cgroup, limit it and move itself there, while the limit moor
// set stays.
func TestDelegatedCgroupInUserns(t *testing.T) {
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("cgroup v2 host: this test drives the v1 memory controller (the v2 path is TestDelegatedCgroupV2's)")
	}
	reachableRun(t)
	b := newBundle(t, "sh", "-c", `set -e
cd /sys/fs/cgroup/memory
mkdir sub
echo 8388608 > sub/memory.limit_in_bytes
echo $$ > sub/cgroup.procs
echo 1073741824 > memory.limit_in_bytes
grep :memory: /proc/self/cgroup
stat -c %u memory.limit_in_bytes`)
	withUserNS(b)
	b.Spec.Annotations = map[string]string{lifecycle.DelegateAnnotation: "true"}
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	r := moor(t, "run", "--keep", "--bundle", b.Dir, b.ID)
	if out := strings.Fields(r.Stdout); r.Code != 0 || len(out) != 2 || !strings.HasSuffix(out[0], ":memory:/sub") || out[1] != "0" {
		t.Fatalf("run: %v, want the task in its sub-cgroup and its cgroup files its root's", r)
	}
	var st unix.Stat_t
	leaf := filepath.Join("/sys/fs/cgroup/memory", cgroupParent, b.ID, "task")
	if err := unix.Stat(leaf, &st); err != nil || st.Uid != usernsHostID {
		t.Errorf("the task's cgroup %s: owner %d (%v), want %d", leaf, st.Uid, err, usernsHostID)
	}
	if got := cgroupFile(t, "memory", b.ID, "memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Errorf("the limit moor set is %s, want %d", got, 64<<20)
	}
	if got := cgroupFile(t, "memory", b.ID, "task/sub/memory.limit_in_bytes"); got != "8388608" {
		t.Errorf("the task's sub-cgroup limit: %s, want 8388608", got)
	}
	mustMoor(t, "delete", b.ID)
	if !cgroupGone(t, b.ID) {
		t.Errorf("the delegated cgroup tree of %s is left", b.ID)
	}
}
