package lifecycle

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/apparmor"
	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/opencontainers/selinux/go-selinux"
)

// HostSupport is what this build of moor can use on a host.
type HostSupport struct {
	Seccomp  bool // built with seccomp, and the kernel filters syscalls
	AppArmor bool
	SELinux  bool
	Systemd  bool // systemd runs as init: the systemd cgroup driver works
	CgroupV1 bool // tasks are placed in v1 controller hierarchies
	CgroupV2 bool // tasks are placed in the unified hierarchy
}

// ProbeHost asks the host under root (the procfs, sysfs and /run it
// holds) what it offers. AppArmor, SELinux and the cgroup mode are read
// through the libraries that apply them, which look at / only.
func ProbeHost(root string) (HostSupport, error) {
	h := HostSupport{
		Seccomp:  seccomp.Enabled && kernelSeccomp(root),
		AppArmor: apparmor.IsEnabled(),
		SELinux:  selinux.GetEnabled(),
		Systemd:  systemdBooted(root),
		CgroupV2: cgroups.IsCgroup2UnifiedMode(),
	}
	f, err := os.Open(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return h, fmt.Errorf("probe cgroup v1: %w", err)
	}
	defer f.Close()
	v1, err := cgroupV1Controllers(f)
	if err != nil {
		return h, fmt.Errorf("probe cgroup v1: %w", err)
	}
	// On a unified host libcontainer uses the unified tree only, whatever
	// v1 hierarchies may also be mounted.
	h.CgroupV1 = v1 && !h.CgroupV2
	return h, nil
}

// kernelSeccomp reports whether the kernel under root filters syscalls by
// seccomp: /proc/self/status has a Seccomp field (CONFIG_SECCOMP) and
// /proc/sys/kernel/seccomp lists filter actions (CONFIG_SECCOMP_FILTER).
func kernelSeccomp(root string) bool {
	if _, err := os.Stat(filepath.Join(root, "proc/sys/kernel/seccomp/actions_avail")); err != nil {
		return false
	}
	f, err := os.Open(filepath.Join(root, "proc/self/status"))
	if err != nil {
		return false
	}
	defer f.Close()
	return hasStatusField(f, "Seccomp")
}

// hasStatusField reports whether a /proc/PID/status has the field name.
func hasStatusField(r io.Reader, name string) bool {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k, _, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return true
		}
	}
	return false
}

// systemdBooted reports whether systemd runs as init on the host under
// root, as sd_booted(3) tells: /run/systemd/system is a directory.
func systemdBooted(root string) bool {
	fi, err := os.Stat(filepath.Join(root, "run/systemd/system"))
	return err == nil && fi.IsDir()
}

// cgroupV1Controllers reports whether a mount table (the format of
// /proc/self/mountinfo) mounts a cgroup v1 hierarchy that holds a
// controller; a named hierarchy alone (name=systemd) limits nothing.
func cgroupV1Controllers(r io.Reader) (bool, error) {
	mounts, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	for _, m := range mounts {
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			if isV1Controller(opt) {
				return true, nil
			}
		}
	}
	return false, nil
}

// isV1Controller tells a controller among a v1 cgroup mount's options.
func isV1Controller(opt string) bool {
	switch opt {
	case "", "rw", "ro", "none", "noprefix", "xattr", "clone_children", "cpuset_v2_mode", "favordynmods":
		return false
	}
	return !strings.HasPrefix(opt, "name=") && !strings.HasPrefix(opt, "release_agent=")
}

// FeatureDoc is the OCI features document of this build (moor version)
// on a host that offers h.
func FeatureDoc(h HostSupport, version string) features.Features {
	no := false
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         configs.KnownHookNames(),
		MountOptions:  specconv.KnownMountOptions(),
		Annotations:   map[string]string{"org.lfedge.moor.version": version},
		Linux: &features.Linux{
			Namespaces:   specconv.KnownNamespaces(),
			Capabilities: capabilities.KnownCapabilities(),
			Cgroup: &features.Cgroup{
				V1: ptr(h.CgroupV1), V2: ptr(h.CgroupV2),
				Systemd: ptr(h.Systemd), SystemdUser: &no,
			},
			Seccomp:  &features.Seccomp{Enabled: ptr(h.Seccomp)},
			Apparmor: &features.Apparmor{Enabled: ptr(h.AppArmor)},
			Selinux:  &features.Selinux{Enabled: ptr(h.SELinux)},
		},
	}
	if h.Seccomp {
		f.Linux.Seccomp = &features.Seccomp{
			Enabled:        ptr(true),
			Actions:        seccomp.KnownActions(),
			Operators:      seccomp.KnownOperators(),
			Archs:          seccomp.KnownArchs(),
			KnownFlags:     seccomp.KnownFlags(),
			SupportedFlags: seccomp.SupportedFlags(),
		}
		major, minor, patch := seccomp.Version()
		f.Annotations["org.lfedge.moor.libseccomp.version"] = fmt.Sprintf("%d.%d.%d", major, minor, patch)
	}
	return f
}

func ptr[T any](v T) *T { return &v }
