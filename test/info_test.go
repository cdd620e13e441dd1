package test

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/nsutil"
)

// taskInfo is the part of `moor info` the test reads.
type taskInfo struct {
	ID     string      `json:"id"`
	Status string      `json:"status"`
	Spec   *specs.Spec `json:"spec"`
	Anchor *struct {
		PID        int               `json:"pid"`
		StartedAt  *time.Time        `json:"startedAt"`
		RSSKiB     uint64            `json:"rssKiB"`
		Threads    int               `json:"threads"`
		Namespaces map[string]uint64 `json:"namespaces"`
		Cgroups    map[string]string `json:"cgroups"`
		CgroupPath string            `json:"cgroupPath"`
	} `json:"anchor"`
}

// TestInfo reads `moor info` by name and by anchor PID and checks it
// against the spec and /proc.
func TestInfo(t *testing.T) {
	b := newBundle(t, "sh", "-c", `trap "exit 0" TERM; while :; do sleep 0.05; done`)
	b.Spec.Linux.CgroupsPath = rootfsCgroupParent + "/" + b.ID
	b.write(t)
	runDetachedFrom(t, b.ID, b.Dir)
	pid := taskState(t, b.ID).PID
	own, err := nsutil.Namespaces("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	want, err := nsutil.Namespaces("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{b.ID, strconv.Itoa(pid)} {
		var info taskInfo
		if err := json.Unmarshal([]byte(mustMoor(t, "info", ref)), &info); err != nil {
			t.Fatalf("info %s: %v", ref, err)
		}
		if info.ID != b.ID || info.Status != "running" || info.Spec == nil || !slices.Equal(info.Spec.Process.Args, b.Spec.Process.Args) {
			t.Fatalf("info %s: id %s, status %s, spec %+v", ref, info.ID, info.Status, info.Spec)
		}
		a := info.Anchor
		if a == nil || a.PID != pid || a.RSSKiB == 0 || a.Threads < 1 || a.StartedAt == nil || time.Since(*a.StartedAt) > time.Hour {
			t.Fatalf("info %s: anchor %+v", ref, a)
		}
		for _, kind := range []string{"pid", "net", "mnt", "uts", "ipc"} {
			if a.Namespaces[kind] != want[kind] || a.Namespaces[kind] == own[kind] {
				t.Errorf("info %s: %s namespace %d, /proc says %d, the test's own is %d", ref, kind, a.Namespaces[kind], want[kind], own[kind])
			}
		}
		if a.CgroupPath != b.Spec.Linux.CgroupsPath || !slices.Contains(mapValues(a.Cgroups), b.Spec.Linux.CgroupsPath) {
			t.Errorf("info %s: cgroup %s, cgroups %v, want %s", ref, a.CgroupPath, a.Cgroups, b.Spec.Linux.CgroupsPath)
		}
	}
	mustMoor(t, "delete", "--force", b.ID)
	checkScratchGone(t, b.ID)
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
