package machine

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotInit is returned by Boot in a process that is not PID 1 of the
// initial PID namespace: it changed nothing.
var ErrNotInit = errors.New("not PID 1 of the initial PID namespace")

// initialPidNSInode is the inode of the initial PID namespace
// (PROC_PID_INIT_INO): the same on every kernel.
const initialPidNSInode = 0xEFFFFFFC

// isInitialPidNS is the guard's rule: PID 1, and the initial PID namespace.
func isInitialPidNS(pid int, pidNSInode uint64) bool {
	return pid == 1 && pidNSInode == initialPidNSInode
}

// checkInit reports whether this process is PID 1 of the initial PID
// namespace. PID 1 finds out from /proc/self/ns/pid; a kernel's first
// process finds /proc empty and mounts it first, and unmounts it again
// when the answer is no (a PID 1 without /proc has a mount namespace of
// its own, so the mount touched nothing else). Any process but PID 1 is
// told no at once.
func checkInit() (bool, error) {
	if os.Getpid() != 1 {
		return false, nil
	}
	mounted := false
	var st unix.Statfs_t
	if err := unix.Statfs("/proc", &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		if err := os.MkdirAll("/proc", 0o555); err != nil {
			return false, fmt.Errorf("check init: %w", err)
		}
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return false, fmt.Errorf("check init: mount /proc: %w", err)
		}
		mounted = true
	}
	fi, err := os.Stat("/proc/self/ns/pid")
	var ino uint64
	if err == nil {
		ino = fi.Sys().(*syscall.Stat_t).Ino
	}
	if isInitialPidNS(os.Getpid(), ino) {
		return true, nil
	}
	if mounted {
		_ = unix.Unmount("/proc", unix.MNT_DETACH)
	}
	if err != nil {
		return false, fmt.Errorf("check init: %w", err)
	}
	return false, nil
}
