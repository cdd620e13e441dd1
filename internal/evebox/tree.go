// Package evebox writes EVE-shaped containers trees for the tests and the
// benchmark: the specs linuxkit writes for EVE's rootfs.yml (read-only
// roots, linuxkit's default capabilities and mounts, every service in an
// absolute cgroup /eve/services/<name> with an oomScoreAdj, pillar with
// every capability, the host's PID and network namespaces, /dev, the
// host's root read-only at /hostfs and /persist rshared), and "EVE in a
// box": that tree with moor-taskmgr as pillar, three user apps and a probe
// service, booted with moor as PID 1. It only writes files.
package evebox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/supervisor"
)

// An EVE-shaped containers tree, written as linuxkit writes the specs of
// EVE's rootfs.yml: read-only roots, linuxkit's default capabilities and
// mounts, every service in an absolute cgroup /eve/services/<name> with an
// oomScoreAdj, and pillar with every capability, the host's PID and
// network namespaces, /dev, the host's root read-only at /hostfs and
// /persist (rshared, rbind), every device allowed and a shared root.

// linuxkitCaps are the capabilities linuxkit gives a container that names none.
var LinuxkitCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// AllCaps is linuxkit's "capabilities: all" on this kernel's list.
var AllCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ"}

// eveOOMScoreAdj stands for EVE's -999: a negative oom_score_adj needs
// CAP_SYS_RESOURCE, which this VM's bounding set lacks, so the tree uses a
// positive one; what is checked is that the spec's value reaches the task.
const OOMScoreAdj = 150

// eveTree is where a tree's bundles go and what they refer to.
type Tree struct {
	Dir      string // the containers tree
	Root     string // the read-only root every bundle shares, as the tasks' host sees it
	CgPrefix string // put before /eve/services/<name>: the test's own parent on this host, "" in a guest
	Persist  string // the host directory bound at /persist
	SysctlD  string // the host directory bound at /etc/sysctl.d
	// Pillar, when set, changes pillar's spec last.
	Pillar func(*specs.Spec)
}

// linuxkitSpec is a spec as linuxkit writes one for an image that asks
// for nothing special: read-only root, new namespaces but the cgroup
// namespace, linuxkit's default mounts and capabilities, no limits.
func LinuxkitSpec(root string, args ...string) *specs.Spec {
	caps := append([]string(nil), LinuxkitCaps...)
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: root, Readonly: true},
		Process: &specs.Process{
			Args: args, Cwd: "/",
			Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "nodev", "noexec", "relatime"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=16m"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
			MaskedPaths:   []string{"/proc/kcore", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			Resources:     &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		},
	}
}

// eveService is a service that says where it runs, traps SIGTERM and
// waits.
func service(name string) string {
	return fmt.Sprintf(`trap 'echo %[1]s got TERM; exit 0' TERM
echo "%[1]s up oom_score_adj=$(cat /proc/self/oom_score_adj)"
while :; do sleep 0.2; done`, name)
}

// pillarScript shows pillar's view: the host's root read-only at
// /hostfs, the host's PID namespace (its PID 1 is the supervisor's
// namespace's init), /persist shared with the host.
const PillarScript = `trap 'echo pillar got TERM; exit 0' TERM
if touch /hostfs/pillar-was-here 2>/dev/null; then ro=no; else ro=yes; fi
echo "pillar up hostfs_ro=$ro pid1=$(cat /proc/1/comm) persist=$(cat /persist/status/storage-init)"
while :; do sleep 0.2; done`

// Write writes the tree's bundles.
func (e *Tree) Write() error {
	services := func(name string) string { return e.CgPrefix + "/eve/services/" + name }
	persist := specs.Mount{Destination: "/persist", Type: "bind", Source: e.Persist, Options: []string{"rshared", "rbind"}}
	var err error
	add := func(kind, name string, s *specs.Spec) {
		if err == nil {
			err = WriteBundle(filepath.Join(e.Dir, kind, name), s)
		}
	}
	// onboot: rngd, sysctl (its extra capabilities), modprobe (linuxkit's
	// "modprobe -a … || :"), storage-init (prepares /persist).
	add("onboot", "000-rngd", LinuxkitSpec(e.Root, "/bin/sh", "-c", "echo rngd: entropy seeded"))
	sysctl := LinuxkitSpec(e.Root, "/bin/sh", "-c", "sysctl -w net.ipv4.ip_forward=1 && echo sysctl: applied $(ls /etc/sysctl.d)")
	sysctl.Linux.ReadonlyPaths = slices.DeleteFunc(sysctl.Linux.ReadonlyPaths, func(p string) bool { return p == "/proc/sys" }) // linuxkit's sysctl image writes it
	sysctl.Mounts = append(sysctl.Mounts, specs.Mount{Destination: "/etc/sysctl.d", Type: "bind", Source: e.SysctlD, Options: []string{"rbind", "ro"}})
	for _, set := range []*[]string{&sysctl.Process.Capabilities.Bounding, &sysctl.Process.Capabilities.Effective, &sysctl.Process.Capabilities.Permitted} {
		*set = append(*set, "CAP_SYS_ADMIN", "CAP_NET_ADMIN")
	}
	add("onboot", "001-sysctl", sysctl)
	add("onboot", "002-modprobe", LinuxkitSpec(e.Root, "/bin/sh", "-c", "modprobe -a nosuch_eve_module_1 nosuch_eve_module_2 2>/dev/null || :"))
	storage := LinuxkitSpec(e.Root, "/bin/sh", "-c", "mkdir -p /persist/status && echo ready > /persist/status/storage-init && echo storage-init: /persist ready")
	storage.Mounts = append(storage.Mounts, persist)
	add("onboot", "003-storage-init", storage)

	adj := OOMScoreAdj
	for _, name := range []string{"newlogd", "watchdog", "wlan"} {
		s := LinuxkitSpec(e.Root, "/bin/sh", "-c", service(name))
		s.Linux.CgroupsPath = services(name)
		s.Process.OOMScoreAdj = &adj
		s.Annotations = map[string]string{supervisor.StopTimeoutAnnotation: "3s"}
		add("services", name, s)
	}
	pillar := LinuxkitSpec(e.Root, "/bin/sh", "-c", PillarScript)
	pillar.Linux.CgroupsPath = services("pillar")
	pillar.Process.OOMScoreAdj = &adj
	pillar.Process.Capabilities = &specs.LinuxCapabilities{Bounding: AllCaps, Effective: AllCaps, Permitted: AllCaps}
	pillar.Linux.Namespaces = Without(pillar.Linux.Namespaces, specs.PIDNamespace, specs.NetworkNamespace)
	pillar.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Type: "a", Major: ptr(int64(0)), Minor: ptr(int64(0)), Access: "rwm"}}
	pillar.Linux.RootfsPropagation = "shared"
	pillar.Mounts = append(pillar.Mounts,
		specs.Mount{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/hostfs", Type: "bind", Source: "/", Options: []string{"rbind", "ro"}},
		persist)
	pillar.Annotations = map[string]string{supervisor.StopTimeoutAnnotation: "3s"}
	if e.Pillar != nil {
		e.Pillar(pillar)
	}
	add("services", "pillar", pillar)
	return err
}

// WriteBundle writes a bundle's config.json into dir, made if missing.
func WriteBundle(dir string, s *specs.Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// Without is namespaces less those of the given types.
func Without(namespaces []specs.LinuxNamespace, types ...specs.LinuxNamespaceType) []specs.LinuxNamespace {
	return slices.DeleteFunc(slices.Clone(namespaces), func(n specs.LinuxNamespace) bool { return slices.Contains(types, n.Type) })
}
