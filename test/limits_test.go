package test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/lifecycle"
)

// TestMemoryHogIsOOMKilled: a task that touches more than its memory limit
// is killed by the kernel's OOM killer; run exits 137 and the recorded exit
// says oom.
func TestMemoryHogIsOOMKilled(t *testing.T) {
	b := newBundle(t, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	limit := int64(16 << 20)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	r := moor(t, "run", "--keep", "--bundle", b.Dir, b.ID)
	if r.Code != 137 {
		t.Fatalf("run of a memory hog: %v, want exit 137 (SIGKILL)", r)
	}
	st := taskState(t, b.ID)
	if st.Exit == nil || st.Exit.Reason != lifecycle.ExitOOM || st.Exit.Signal != "SIGKILL" {
		t.Fatalf("recorded exit %+v, want oom by SIGKILL", st.Exit)
	}
	mustMoor(t, "delete", b.ID)
}

// TestCPUHogIsThrottled: a busy loop under a 10% quota is throttled.
func TestCPUHogIsThrottled(t *testing.T) {
	b := newBundle(t, "sh", "-c", "while :; do :; done")
	quota, period := int64(10000), uint64(100000)
	b.Spec.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	runDetached(t, b)
	if got := cgroupFile(t, "cpu", b.ID, "cpu.cfs_quota_us"); got != "10000" {
		t.Fatalf("cpu.cfs_quota_us %s, want 10000", got)
	}
	waitFor(t, 10*time.Second, "the CPU hog to be throttled", func() bool {
		for _, l := range strings.Split(cgroupFile(t, "cpu", b.ID, "cpu.stat"), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "nr_throttled" {
				n, _ := strconv.Atoi(f[1])
				return n > 0
			}
		}
		return false
	})
	mustMoor(t, "stop", "--timeout", "100ms", b.ID)
	mustMoor(t, "delete", b.ID)
}

// TestPidsLimit: pids.max is set from the spec and enforced: the fifth
// process cannot be forked.
func TestPidsLimit(t *testing.T) {
	b := newBundle(t, "sh", "-c", "for i in 1 2 3 4 5 6; do sleep 100 & done; wait")
	pids := int64(4)
	b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	r := moor(t, "run", "--keep", "--bundle", b.Dir, b.ID)
	if r.Code == 0 || !strings.Contains(r.Stderr, "can't fork") {
		t.Fatalf("run past pids.max: %v, want a failed fork", r)
	}
	if got := cgroupFile(t, "pids", b.ID, "pids.max"); got != "4" {
		t.Fatalf("pids.max %s, want 4", got)
	}
	mustMoor(t, "delete", b.ID)
}

// TestUpdate changes a running task's limits in cgroupfs; a bad value is
// refused with the field named and changes nothing.
func TestUpdate(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	runDetached(t, b)
	mustMoor(t, "update", "--memory", "32MiB", "--cpu-quota", "20000", "--cpu-period", "100000", "--pids-limit", "50", b.ID)
	for _, c := range []struct{ controller, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(32 << 20)},
		{"cpu", "cpu.cfs_quota_us", "20000"},
		{"pids", "pids.max", "50"},
	} {
		if got := cgroupFile(t, c.controller, b.ID, c.file); got != c.want {
			t.Errorf("%s %s, want %s", c.file, got, c.want)
		}
	}
	if r := moor(t, "update", "--cpu-quota", "10", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "linux.resources.cpu.quota") {
		t.Fatalf("update with a bad quota: %v", r)
	}
	if got := cgroupFile(t, "cpu", b.ID, "cpu.cfs_quota_us"); got != "20000" {
		t.Fatalf("refused update changed the quota to %s", got)
	}
	mustMoor(t, "delete", "--force", b.ID)
}

// TestDetachedExitFacts: with no reaper of moor's watching (create and
// start from the CLI), state still tells an OOM kill from the task's
// cgroup, and any other end as code "unknown" rather than no exit at all.
func TestDetachedExitFacts(t *testing.T) {
	hog := newBundle(t, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	limit := int64(16 << 20)
	hog.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	createTask(t, hog)
	mustMoor(t, "start", hog.ID)
	st := waitStatus(t, hog.ID, lifecycle.Stopped)
	if st.Exit == nil || st.Exit.Reason != lifecycle.ExitOOM || st.Exit.Code != 137 {
		t.Fatalf("detached OOM: exit %+v, want reason oom, code 137", st.Exit)
	}
	brief := newBundle(t, "true")
	createTask(t, brief)
	mustMoor(t, "start", brief.ID)
	waitStatus(t, brief.ID, lifecycle.Stopped)
	if out := mustMoor(t, "state", brief.ID); !strings.Contains(out, `"code": "unknown"`) || !strings.Contains(out, `"reason": "unknown"`) {
		t.Fatalf("detached exit with no reaper: %s, want code and reason unknown", out)
	}
}
