package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestBadSpecLeavesNothing: a spec that gets wrong what every task needs,
// or (when asked for) the minimum viable spec, is refused with an error
// naming the field, a non-zero exit, and no cgroup or state left behind.
func TestBadSpecLeavesNothing(t *testing.T) {
	neg, tiny, low := int64(-5), int64(10), uint64(1)
	minimum := []string{"--require-minimum-spec"}
	cases := []struct {
		name, field string
		mutate      func(*specs.Spec)
		global      []string // flags before the verb
	}{
		{"no root", "root.path", func(s *specs.Spec) { s.Root = nil }, nil},
		{"root missing", "root.path", func(s *specs.Spec) { s.Root.Path = "/nonexistent-moor-root" }, nil},
		{"no args", "process.args", func(s *specs.Spec) { s.Process.Args = nil }, nil},
		{"no process", "process", func(s *specs.Spec) { s.Process = nil }, nil},
		{"negative memory", "linux.resources.memory.limit", func(s *specs.Spec) { s.Linux.Resources.Memory.Limit = &neg }, nil},
		{"tiny quota", "linux.resources.cpu.quota", func(s *specs.Spec) { s.Linux.Resources.CPU.Quota = &tiny }, nil},
		{"low shares", "linux.resources.cpu.shares", func(s *specs.Spec) { s.Linux.Resources.CPU.Shares = &low }, nil},
		{"bad cpuset", "linux.resources.cpu.cpus", func(s *specs.Spec) { s.Linux.Resources.CPU.Cpus = "3-1" }, nil},
		{"unknown capability", "CAP_TELEPORT", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_TELEPORT")
		}, nil},
		{"unknown rlimit", "RLIMIT_TEA", func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_TEA", Hard: 1, Soft: 1}} }, nil},
		{"unknown ociVersion", "ociVersion", func(s *specs.Spec) { s.Version = "9.9.9" }, nil},
		{"missing program", "sh-that-is-not-there", func(s *specs.Spec) { s.Process.Args = []string{"sh-that-is-not-there"} }, nil},
		{"minimum: no memory", "linux.resources.memory", func(s *specs.Spec) { s.Linux.Resources.Memory = nil }, minimum},
		{"minimum: no cpu", "linux.resources.cpu", func(s *specs.Spec) { s.Linux.Resources.CPU = nil }, minimum},
		{"minimum by annotation", "linux.resources.memory", func(s *specs.Spec) {
			s.Linux.Resources.Memory = nil
			s.Annotations = map[string]string{"moor.require-minimum-spec": "true"}
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBundle(t, "true")
			c.mutate(b.Spec)
			b.write(t)
			t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
			r := moor(t, append(c.global, "create", "--bundle", b.Dir, b.ID)...)
			if r.Code == 0 || !strings.Contains(r.Stderr, c.field) {
				t.Fatalf("create: %v, want an error naming %s", r, c.field)
			}
			checkNoTrace(t, b.ID)
		})
	}
	t.Run("not json", func(t *testing.T) {
		b := newBundle(t, "true")
		if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte("{nope"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := moor(t, "create", "--bundle", b.Dir, b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "config.json") {
			t.Fatalf("create: %v, want an error naming config.json", r)
		}
		checkNoTrace(t, b.ID)
	})
	t.Run("unknown properties are accepted", func(t *testing.T) {
		b := newBundle(t, "true")
		b.write(t)
		path := filepath.Join(b.Dir, "config.json")
		raw, _ := os.ReadFile(path)
		raw = []byte(strings.Replace(string(raw), "{", `{"org.example.future": {"x": 1},`, 1))
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
		mustMoor(t, "create", "--bundle", b.Dir, b.ID)
		mustMoor(t, "delete", "--force", b.ID)
	})
}

func checkNoTrace(t *testing.T, id string) {
	t.Helper()
	if _, err := os.Stat(filepath.Dir(recordFile(id))); !os.IsNotExist(err) {
		t.Fatalf("record of refused task exists: %v", err)
	}
	if _, err := os.Stat(filepath.Join(stateRoot, "default", id)); !os.IsNotExist(err) {
		t.Fatalf("state dir of refused task exists: %v", err)
	}
	if !cgroupGone(t, id) {
		t.Fatalf("cgroup of refused task exists")
	}
	if r := moor(t, "state", id); r.Code == 0 {
		t.Fatalf("refused task has a state: %v", r)
	}
}

// TestSeccomp: a spec's seccomp profile is enforced (moor is built with
// libseccomp).
func TestSeccomp(t *testing.T) {
	b := newBundle(t, "sh", "-c", "mkdir /tmp/x && echo made || echo refused")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno,
		}},
	}
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	if out := mustMoor(t, "run", "--bundle", b.Dir, b.ID); out != "refused\n" {
		t.Fatalf("mkdir under a seccomp profile that denies it: %q", out)
	}
	if out := mustMoor(t, "features"); !strings.Contains(out, `"SCMP_ACT_ERRNO"`) {
		t.Fatalf("features does not list seccomp actions:\n%s", out)
	}
}

// TestSystemdCgroupWithoutSystemd: --systemd-cgroup where systemd does not
// run is a clear error, not a half-made task.
func TestSystemdCgroupWithoutSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs on this host: the driver is usable here")
	}
	b := newBundle(t, "true")
	b.write(t)
	r := moor(t, "--systemd-cgroup", "create", "--bundle", b.Dir, b.ID)
	if r.Code == 0 || !strings.Contains(r.Stderr, "systemd is not running") {
		t.Fatalf("create with --systemd-cgroup: %v", r)
	}
	checkNoTrace(t, b.ID)
}
