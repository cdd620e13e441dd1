package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/apparmor"
	"github.com/opencontainers/runc/types"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/opencontainers/selinux/go-selinux"

	"github.com/lf-edge/moor/lifecycle"
)

// statsEvent is a line of `moor events` with its stats decoded.
type statsEvent struct {
	Type string       `json:"type"`
	ID   string       `json:"id"`
	Data *types.Stats `json:"data"`
}

// TestEventsStats: `events --stats` of a running task, by ID and by anchor
// PID, prints one runc stats line read from the task's cgroup.
func TestEventsStats(t *testing.T) {
	b := newBundle(t, "sleep", "100")
	pid := runDetached(t, b)
	for _, ref := range []string{b.ID, strconv.Itoa(pid)} {
		out := mustMoor(t, "events", "--stats", ref)
		if n := strings.Count(out, "\n"); n != 1 || !strings.HasSuffix(out, "\n") {
			t.Fatalf("events --stats %s printed %d lines, want one: %q", ref, n, out)
		}
		var ev statsEvent
		if err := json.Unmarshal([]byte(out), &ev); err != nil {
			t.Fatalf("decode events --stats %s: %v: %q", ref, err, out)
		}
		if ev.Type != "stats" || ev.ID != b.ID || ev.Data == nil {
			t.Fatalf("events --stats %s: type %q id %q data %v, want stats of %s", ref, ev.Type, ev.ID, ev.Data, b.ID)
		}
		if ev.Data.Memory.Usage.Usage == 0 || ev.Data.Pids.Current < 1 {
			t.Fatalf("events --stats %s: memory usage %d, pids %d; want both > 0: %s",
				ref, ev.Data.Memory.Usage.Usage, ev.Data.Pids.Current, out)
		}
		if lim := ev.Data.Memory.Usage.Limit; lim != 64<<20 {
			t.Errorf("events --stats %s: memory limit %d, want the spec's %d", ref, lim, 64<<20)
		}
	}
	mustMoor(t, "kill", b.ID, "KILL")
	waitStatus(t, b.ID, lifecycle.Stopped)
	if r := moor(t, "events", "--stats", b.ID); r.Code == 0 {
		t.Fatalf("events --stats of a stopped task: %v, want an error", r)
	}
	mustMoor(t, "delete", b.ID)
}

// TestEventsOOM: `events --interval 100ms` of a task that is then
// OOM-killed prints stats events, one oom event, and exits 0 once the task
// is gone.
func TestEventsOOM(t *testing.T) {
	// The hog waits for /tmp/go, so that events watches before the kill.
	b := newBundle(t, "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; exec tail /dev/zero")
	limit := int64(16 << 20)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	runDetached(t, b)

	cmd := moorCmd("events", "--interval", "100ms", b.ID)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	var stats, ooms int
	triggered := false
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				done = true
				break
			}
			var ev statsEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("decode event %q: %v", line, err)
			}
			if ev.ID != b.ID {
				t.Fatalf("event %q: id %q, want %s", line, ev.ID, b.ID)
			}
			switch ev.Type {
			case "stats":
				stats++
			case "oom":
				ooms++
			default:
				t.Fatalf("event %q: unknown type", line)
			}
			if !triggered { // events watches: let the hog loose
				mustMoor(t, "exec", b.ID, "touch", "/tmp/go")
				triggered = true
			}
		case <-deadline:
			t.Fatalf("events: no end 30s in (%d stats, %d oom events so far); stderr %q", stats, ooms, stderr.String())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("events: %v, want exit 0 once the task is gone; stderr %q", err, stderr.String())
	}
	if stats == 0 || ooms != 1 {
		t.Fatalf("events printed %d stats and %d oom events, want some stats and one oom", stats, ooms)
	}
	st := waitStatus(t, b.ID, lifecycle.Stopped)
	if st.Exit != nil && st.Exit.Reason != lifecycle.ExitOOM && st.Exit.Reason != lifecycle.ExitUnknown {
		t.Errorf("recorded exit %+v, want oom", st.Exit)
	}
	mustMoor(t, "delete", b.ID)
}

// TestFeaturesProbed: `features` reports what this host offers, as the
// probes see it, not fixed values. This VM kind is a hybrid cgroup host.
func TestFeaturesProbed(t *testing.T) {
	var f features.Features
	out := mustMoor(t, "features")
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("decode features: %v", err)
	}
	l := f.Linux
	if l == nil || l.Cgroup == nil || l.Seccomp == nil || l.Apparmor == nil || l.Selinux == nil {
		t.Fatalf("features lacks linux cgroup/seccomp/apparmor/selinux: %s", out)
	}
	unified := cgroups.IsCgroup2UnifiedMode()
	v1 := !unified && v1ControllerMounted(t)
	_, err := os.Stat("/run/systemd/system")
	systemd := err == nil
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	seccomp := strings.Contains(string(status), "\nSeccomp:")
	for _, c := range []struct {
		name      string
		got, want *bool
	}{
		{"cgroup v1", l.Cgroup.V1, &v1},
		{"cgroup v2", l.Cgroup.V2, &unified},
		{"systemd", l.Cgroup.Systemd, &systemd},
		{"seccomp", l.Seccomp.Enabled, &seccomp},
		{"apparmor", l.Apparmor.Enabled, ptrTo(apparmor.IsEnabled())},
		{"selinux", l.Selinux.Enabled, ptrTo(selinux.GetEnabled())},
	} {
		if c.got == nil || *c.got != *c.want {
			t.Errorf("features: %s %v, the host says %v", c.name, c.got, *c.want)
		}
	}
	if !v1 && !unified {
		t.Errorf("the host has neither v1 controllers nor a unified hierarchy")
	}
	if seccomp && len(l.Seccomp.Actions) == 0 {
		t.Errorf("seccomp enabled without actions: %s", out)
	}
}

// v1ControllerMounted reports whether a cgroup v1 hierarchy with a
// controller (not only a name=) is mounted.
func v1ControllerMounted(t *testing.T) bool {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		for _, c := range []string{"memory", "cpu", "pids", "cpuset", "blkio", "devices", "freezer"} {
			if strings.Contains(","+m.VFSOptions+",", ","+c+",") {
				return true
			}
		}
	}
	return false
}

func ptrTo[T any](v T) *T { return &v }
