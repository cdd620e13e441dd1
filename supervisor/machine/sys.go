package machine

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/reaper"
)

// sys is the privileged edge of a machine's init: every call that
// changes the machine. Only Boot makes the real one, after its guard;
// tests use a fake that records the calls.
type sys interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
	// FSType is the file-system magic of path (statfs's f_type).
	FSType(path string) (int64, error)
	Reboot(cmd int) error
	Sethostname(name string) error
	LinkUp(name string) error
	LoadModule(path, params string) error
	// UseConsole makes the console at path the process's stdin, stdout
	// and stderr.
	UseConsole(path string) error
	// KillAll signals every process but this one.
	KillAll(sig unix.Signal) error
	// Reap reaps the children that have exited and reports whether any
	// child is left, through the machine's one reaper.
	Reap() bool
	SwitchRoot(newRoot string) error
	Exec(path string, argv, env []string) error
}

// realSys makes the calls. Only Boot makes one; it gives it the
// machine's reaper once it has one, after the setup.
type realSys struct {
	reaper *reaper.Reaper
}

func (realSys) Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	return nil
}

func (realSys) Unmount(target string, flags int) error {
	if err := unix.Unmount(target, flags); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

func (realSys) FSType(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Type, nil
}

func (realSys) Reboot(cmd int) error {
	if err := unix.Reboot(cmd); err != nil {
		return fmt.Errorf("reboot %#x: %w", cmd, err)
	}
	return nil
}

func (realSys) Sethostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	return nil
}

// LinkUp sets IFF_UP on an interface through an ioctl (the loopback
// needs no address of its own: the kernel gives lo 127.0.0.1 and ::1 as
// it comes up).
func (realSys) LinkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	return nil
}

// LoadModule loads a module file; a compressed one (.ko.xz, .ko.zst,
// .ko.gz) is handed to the kernel to decompress.
func (realSys) LoadModule(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	flags := 0
	if compressed(path) {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), params, flags); err != nil {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

func (realSys) UseConsole(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open console %s: %w", path, err)
	}
	defer unix.Close(fd)
	for target := 0; target <= 2; target++ {
		if err := unix.Dup3(fd, target, 0); err != nil {
			return fmt.Errorf("use console %s as fd %d: %w", path, target, err)
		}
	}
	return nil
}

func (realSys) KillAll(sig unix.Signal) error {
	if err := unix.Kill(-1, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal every process with %v: %w", sig, err)
	}
	return nil
}

// Reap reaps every child that has exited and reports whether any is left,
// through the machine's reaper: it stays the one waiter once the init
// system is done.
func (s realSys) Reap() bool { return s.reaper.ReapNow() }

// SwitchRoot makes newRoot, a mount point, the root: chdir, move, chroot.
func (realSys) SwitchRoot(newRoot string) error {
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("switch root to %s: %w", newRoot, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("switch root to %s: move: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("switch root to %s: chroot: %w", newRoot, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("switch root to %s: %w", newRoot, err)
	}
	return nil
}

func (realSys) Exec(path string, argv, env []string) error {
	if err := unix.Exec(path, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}
