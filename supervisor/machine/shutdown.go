package machine

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Action is how a machine goes down once its tree is shut down.
type Action int

const (
	// PowerOff is reboot(LINUX_REBOOT_CMD_POWER_OFF): SIGTERM, SIGINT
	// (Ctrl-Alt-Del), SIGPWR, the power button, and any failure of the
	// init system's loop.
	PowerOff Action = iota
	// Restart is reboot(LINUX_REBOOT_CMD_RESTART): RestartSignal.
	Restart
)

// RestartSignal asks a machine's moor to shut its tree down and restart
// the machine (kill -USR2 1).
const RestartSignal = unix.SIGUSR2

func (a Action) String() string {
	if a == Restart {
		return "restart"
	}
	return "poweroff"
}

func (a Action) rebootCmd() int {
	if a == Restart {
		return unix.LINUX_REBOOT_CMD_RESTART
	}
	return unix.LINUX_REBOOT_CMD_POWER_OFF
}

// actionOf is what a signal to a machine's moor asks for; ok is false for
// a signal that does not end the machine (SIGHUP, SIGUSR1).
func actionOf(sig unix.Signal) (a Action, ok bool) {
	switch sig {
	case unix.SIGTERM, unix.SIGINT, unix.SIGPWR:
		return PowerOff, true
	case RestartSignal:
		return Restart, true
	}
	return PowerOff, false
}

// UnmountOrder lists the mount points to unmount, the last mounted
// first, leaving out / (remounted read-only instead).
func UnmountOrder(mounts []*mountinfo.Info) []string {
	var out []string
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Mountpoint != "/" {
			out = append(out, mounts[i].Mountpoint)
		}
	}
	return out
}

// Bounds of the end of a machine: what is left of processes after the
// tree's shutdown gets strayGrace after SIGTERM, then SIGKILL and
// killWait to go.
const (
	strayGrace = 2 * time.Second
	killWait   = 2 * time.Second
	reapPoll   = 20 * time.Millisecond
)

// strays lists the user processes under procRoot but self: those with a
// command line (kernel threads have none, nor do zombies).
func strays(procRoot string, self int) []int {
	ents, _ := os.ReadDir(procRoot)
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "cmdline")); err == nil && len(b) > 0 {
			out = append(out, pid)
		}
	}
	return out
}

// killAll ends every process left: SIGTERM, a short grace, SIGKILL. It
// logs how many there were: none, once the tree stopped everything it
// ran.
func (m *machine) killAll() {
	left := strays(m.path("/proc"), os.Getpid())
	m.log.Info("processes left after the tree's shutdown", "count", len(left), "pids", left)
	for _, step := range []struct {
		sig  unix.Signal
		wait time.Duration
	}{{unix.SIGTERM, strayGrace}, {unix.SIGKILL, killWait}} {
		if err := m.sys.KillAll(step.sig); err != nil {
			m.log.Warn("end stray processes", "err", err)
		}
		deadline := time.Now().Add(step.wait)
		for m.sys.Reap() && time.Now().Before(deadline) {
			time.Sleep(reapPoll)
		}
		if !m.sys.Reap() {
			return
		}
	}
	m.log.Warn("processes are left after SIGKILL")
}

// unmountAll unmounts every mount it can, the last mounted first, and
// remounts read-only what it cannot (the root, /dev with the console
// open).
func (m *machine) unmountAll() {
	mounts, err := m.readMounts()
	if err != nil {
		m.log.Warn("unmount", "err", err)
	}
	var unmounted, readOnly int
	var left []string
	for _, mp := range append(UnmountOrder(mounts), "/") {
		if mp != "/" && m.sys.Unmount(mp, 0) == nil {
			unmounted++
			continue
		}
		if m.sys.Mount("", mp, "", unix.MS_REMOUNT|unix.MS_RDONLY, "") == nil {
			readOnly++
			continue
		}
		left = append(left, mp)
	}
	m.log.Info("file systems unmounted", "unmounted", unmounted, "read_only", readOnly, "left", left)
}

// halt takes the machine down: stray processes end, file systems are
// synced and unmounted, and the kernel powers off or restarts. It never
// returns: should the kernel refuse, it tries to power off, then to halt,
// and then waits for ever rather than let PID 1 exit (a kernel panic).
func (m *machine) halt(a Action) {
	m.log.Info("machine going down", "action", a.String())
	m.killAll()
	unix.Sync()
	m.unmountAll()
	unix.Sync()
	m.log.Info("machine down", "action", a.String())
	for _, cmd := range []int{a.rebootCmd(), unix.LINUX_REBOOT_CMD_POWER_OFF, unix.LINUX_REBOOT_CMD_HALT} {
		if err := m.sys.Reboot(cmd); err != nil {
			m.log.Error("machine will not go down", "err", err)
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}
