package lifecycle

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/procfs"
)

// TestCheckTimeOffset: an offset must keep the clock between 0 and the
// kernel's bound, KTIME_SEC_MAX/2, and its nanoseconds below a second.
func TestCheckTimeOffset(t *testing.T) {
	const now = 1000
	for _, ok := range []specs.LinuxTimeOffset{{Secs: 1000}, {Secs: -1000}, {Secs: maxClockSec - now}, {Nanosecs: 999999999}} {
		if err := checkTimeOffset(now, ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []specs.LinuxTimeOffset{{Secs: -1001}, {Secs: maxClockSec - now + 1}, {Secs: -1 << 62}, {Nanosecs: 1e9}} {
		if err := checkTimeOffset(now, bad); err == nil {
			t.Errorf("%+v was taken", bad)
		}
	}
}

// TestCheckTimeNS: offsets need a time namespace of the task's own and
// known clocks; each error names the field.
func TestCheckTimeNS(t *testing.T) {
	spec := func(ns *specs.LinuxNamespace, offsets map[string]specs.LinuxTimeOffset) *specs.Spec {
		s := &specs.Spec{Linux: &specs.Linux{TimeOffsets: offsets}}
		if ns != nil {
			s.Linux.Namespaces = []specs.LinuxNamespace{*ns}
		}
		return s
	}
	timens := &specs.LinuxNamespace{Type: specs.TimeNamespace}
	boot := map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000}}
	for want, s := range map[string]*specs.Spec{
		"linux.timeOffsets: set, but linux.namespaces has no time namespace": spec(nil, boot),
		"linux.timeOffsets: set, but the task joins":                         spec(&specs.LinuxNamespace{Type: specs.TimeNamespace, Path: "/proc/1/ns/time"}, boot),
		"linux.timeOffsets.realtime: unknown clock":                          spec(timens, map[string]specs.LinuxTimeOffset{"realtime": {Secs: 1}}),
		"linux.timeOffsets.monotonic: secs":                                  spec(timens, map[string]specs.LinuxTimeOffset{"monotonic": {Secs: -1 << 40}}),
	} {
		err := checkTimeNS(s, "/proc")
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want ErrInvalidSpec with %q", err, want)
		}
	}
	noTimens := t.TempDir() // a procfs without timens_offsets: a kernel without time namespaces
	if err := checkTimeNS(spec(timens, boot), noTimens); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "time namespaces are not available") {
		t.Errorf("on a kernel without time namespaces: %v", err)
	}
}

// TestWritableCgroupfs: a delegated task's cgroupfs is mounted read-write
// (added when the spec has none) and is neither masked nor read-only.
func TestWritableCgroupfs(t *testing.T) {
	cfg := &configs.Config{
		Mounts: []*configs.Mount{
			{Device: "sysfs", Destination: "/sys", Flags: unix.MS_RDONLY},
			{Device: "cgroup", Destination: "/sys/fs/cgroup", Flags: unix.MS_RDONLY | unix.MS_NOSUID},
		},
		ReadonlyPaths: []string{"/proc/bus", "/sys/fs/cgroup"},
		MaskPaths:     []string{"/sys/fs/cgroup/memory", "/proc/kcore"},
	}
	writableCgroupfs(cfg)
	if cfg.Mounts[1].Flags != unix.MS_NOSUID || cfg.Mounts[0].Flags != unix.MS_RDONLY || len(cfg.Mounts) != 2 {
		t.Errorf("mounts %+v %+v", *cfg.Mounts[0], *cfg.Mounts[1])
	}
	if len(cfg.ReadonlyPaths) != 1 || len(cfg.MaskPaths) != 1 {
		t.Errorf("read-only %v, masked %v: want /sys/fs/cgroup out of both", cfg.ReadonlyPaths, cfg.MaskPaths)
	}
	none := &configs.Config{}
	writableCgroupfs(none)
	if len(none.Mounts) != 1 || none.Mounts[0].Destination != "/sys/fs/cgroup" || none.Mounts[0].Flags&unix.MS_RDONLY != 0 {
		t.Fatalf("no cgroup mount added: %+v", none.Mounts)
	}
}

// TestInCgroupTree: a process is in the tree when some hierarchy puts it
// at or below the cgroup, not in a sibling whose name merely begins alike.
func TestInCgroupTree(t *testing.T) {
	for text, want := range map[string]bool{
		"4:memory:/run/P/task/sub\n0::/\n": true,
		"4:memory:/run/P\n":                true,
		"4:memory:/run/P2/task\n":          false,
		"0::/run\n":                        false,
	} {
		cgroups, err := procfs.ParseCgroups(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if got := inCgroupTree(cgroups, "/run/P"); got != want {
			t.Errorf("%q: %v, want %v", text, got, want)
		}
	}
}
