package machine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) of a machine's init.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
}

// EarlyMounts are the kernel file systems a machine needs before its
// tree boots, in order (/proc comes first, from the guard). /dev is the
// kernel's devtmpfs, with devpts, shm and mqueue on it; /run and /tmp are
// tmpfs (the state root of moor is /run/moor).
func EarlyMounts() []Mount {
	const (
		nosuid = unix.MS_NOSUID
		nodev  = unix.MS_NODEV
		noexec = unix.MS_NOEXEC
	)
	return []Mount{
		{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: nosuid | nodev | noexec},
		{Source: "dev", Target: "/dev", FSType: "devtmpfs", Flags: nosuid, Data: "mode=0755"},
		{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: nosuid | noexec, Data: "gid=5,mode=0620,ptmxmode=0666"},
		{Source: "shm", Target: "/dev/shm", FSType: "tmpfs", Flags: nosuid | nodev, Data: "mode=1777"},
		{Source: "mqueue", Target: "/dev/mqueue", FSType: "mqueue", Flags: nosuid | nodev | noexec},
		{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: nosuid | nodev, Data: "mode=0755"},
		{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: nosuid | nodev, Data: "mode=1777"},
	}
}

// devLinks are the usual links of /dev that devtmpfs does not make.
var devLinks = [][2]string{
	{"/dev/fd", "/proc/self/fd"}, {"/dev/stdin", "/proc/self/fd/0"},
	{"/dev/stdout", "/proc/self/fd/1"}, {"/dev/stderr", "/proc/self/fd/2"},
}

// mountAll makes each mount's target and mounts it, below the machine's
// root. It goes on past a failure and returns them all.
func (m *machine) mountAll(ms []Mount) error {
	var errs []error
	for _, mt := range ms {
		target := m.path(mt.Target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("make %s: %w", mt.Target, err))
			continue
		}
		if err := m.sys.Mount(mt.Source, target, mt.FSType, mt.Flags, mt.Data); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// earlyMounts is the mounts step: the early mounts and /dev's links.
func (m *machine) earlyMounts() error {
	err := m.mountAll(EarlyMounts())
	for _, l := range devLinks {
		if _, e := os.Lstat(m.path(l[0])); e == nil {
			continue
		}
		if e := os.Symlink(l[1], m.path(l[0])); e != nil {
			err = errors.Join(err, fmt.Errorf("link %s: %w", l[0], e))
		}
	}
	return err
}

// cgroups is the cgroups step: it picks the mode, says which and why,
// and mounts its hierarchies.
func (m *machine) cgroups() error {
	fsys, err := os.Open(m.path("/proc/filesystems"))
	if err != nil {
		return fmt.Errorf("mount cgroups: %w", err)
	}
	defer fsys.Close()
	cgs, err := os.Open(m.path("/proc/cgroups"))
	if err != nil {
		return fmt.Errorf("mount cgroups: %w", err)
	}
	defer cgs.Close()
	s, err := ReadCgroupSupport(fsys, cgs, m.cmdline)
	if err != nil {
		return fmt.Errorf("mount cgroups: %w", err)
	}
	mode, why := ChooseCgroupMode(s, m.cmdline)
	m.log.Info("cgroup mode", "mode", mode.String(), "why", why, "v1_controllers", len(s.Controllers), "cgroup2", s.V2)
	err = m.mountAll(CgroupMounts(mode, s.Controllers))
	if mode != CgroupV2 {
		// Older kernels keep a flat memory hierarchy unless asked.
		_ = os.WriteFile(filepath.Join(m.path(cgroupRoot), "memory", "memory.use_hierarchy"), []byte("1"), 0o644)
	}
	return err
}
