package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mountinfo lines of a hybrid host, a unified one with systemd's named v1
// hierarchy, and a host with no cgroups at all.
const (
	hybridMounts = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	unifiedMounts = `31 23 0:28 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate
40 31 0:37 / /run/legacy rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
`
	noMounts = `22 1 0:21 / /proc rw,relatime - proc proc rw
`
)

func TestCgroupV1Controllers(t *testing.T) {
	for name, tc := range map[string]struct {
		table string
		want  bool
	}{
		"hybrid":  {hybridMounts, true},
		"unified": {unifiedMounts, false},
		"none":    {noMounts, false},
	} {
		got, err := cgroupV1Controllers(strings.NewReader(tc.table))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != tc.want {
			t.Errorf("%s: cgroupV1Controllers = %v, want %v", name, got, tc.want)
		}
	}
}

func TestHasStatusField(t *testing.T) {
	status := "Name:\tcat\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n"
	if !hasStatusField(strings.NewReader(status), "Seccomp") {
		t.Error("Seccomp field not found")
	}
	if hasStatusField(strings.NewReader("Name:\tcat\nSeccomp_filters:\t0\n"), "Seccomp") {
		t.Error("Seccomp_filters taken for Seccomp")
	}
}

// fakeRoot makes a root directory holding the given files.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestKernelSeccomp(t *testing.T) {
	status := "Name:\tmoor\nSeccomp:\t0\n"
	actions := "kill_process kill_thread trap errno user_notif trace log allow\n"
	for name, tc := range map[string]struct {
		files map[string]string
		want  bool
	}{
		"filter":    {map[string]string{"proc/self/status": status, "proc/sys/kernel/seccomp/actions_avail": actions}, true},
		"no filter": {map[string]string{"proc/self/status": status}, false},
		"none":      {map[string]string{"proc/self/status": "Name:\tmoor\n"}, false},
	} {
		if got := kernelSeccomp(fakeRoot(t, tc.files)); got != tc.want {
			t.Errorf("%s: kernelSeccomp = %v, want %v", name, got, tc.want)
		}
	}
}

func TestSystemdBooted(t *testing.T) {
	root := t.TempDir()
	if systemdBooted(root) {
		t.Error("systemd seen without /run/systemd/system")
	}
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !systemdBooted(root) {
		t.Error("systemd not seen with /run/systemd/system")
	}
}

func TestHostFeatureDoc(t *testing.T) {
	h := HostSupport{CgroupV1: true, AppArmor: true, Systemd: false}
	f := FeatureDoc(h, "test")
	cg := f.Linux.Cgroup
	if !*cg.V1 || *cg.V2 || *cg.Systemd || *cg.SystemdUser {
		t.Errorf("cgroup features v1 %v v2 %v systemd %v user %v, want true false false false", *cg.V1, *cg.V2, *cg.Systemd, *cg.SystemdUser)
	}
	if !*f.Linux.Apparmor.Enabled || *f.Linux.Selinux.Enabled || *f.Linux.Seccomp.Enabled {
		t.Errorf("apparmor %v selinux %v seccomp %v, want true false false",
			*f.Linux.Apparmor.Enabled, *f.Linux.Selinux.Enabled, *f.Linux.Seccomp.Enabled)
	}
	if f.Linux.Seccomp.Actions != nil {
		t.Errorf("seccomp actions %v listed with seccomp off", f.Linux.Seccomp.Actions)
	}
}

// TestProbeHostRoot: the probes that take a root read it, not /.
func TestProbeHostRoot(t *testing.T) {
	root := fakeRoot(t, map[string]string{"proc/self/mountinfo": hybridMounts, "proc/self/status": "Name:\tmoor\n"})
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := ProbeHost(root)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Systemd || h.Seccomp || h.CgroupV1 == h.CgroupV2 {
		t.Errorf("ProbeHost(%s) = %+v, want systemd, no seccomp, one cgroup mode", root, h)
	}
}
