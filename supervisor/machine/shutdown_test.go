package machine

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/supervisor"
)

const machineMounts = `1 1 0:2 / / rw - rootfs rootfs rw
25 1 0:26 / / rw - tmpfs tmpfs rw
26 25 0:5 / /proc rw - proc proc rw
27 25 0:6 / /sys rw - sysfs sysfs rw
28 25 0:7 / /dev rw - devtmpfs dev rw
29 28 0:8 / /dev/pts rw - devpts devpts rw
30 27 0:9 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
`

func TestUnmountOrder(t *testing.T) {
	ms, err := mountinfo.GetMountsFromReader(strings.NewReader(machineMounts), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/sys/fs/cgroup", "/dev/pts", "/dev", "/sys", "/proc"}
	if got := UnmountOrder(ms); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestUnmountAll: the last mounted first; what will not unmount is
// remounted read-only, the root last.
func TestUnmountAll(t *testing.T) {
	m, fs, log := newTestMachine(t, "")
	writeFiles(t, m.root, map[string]string{"proc/self/mountinfo": machineMounts})
	fs.fail["unmount /dev"] = unix.EBUSY
	m.unmountAll()
	want := []string{
		"unmount /sys/fs/cgroup", "unmount /dev/pts", "unmount /dev", "mount  /dev  0x21 ", "unmount /sys", "unmount /proc",
		"mount  /  0x21 ",
	}
	if got := fs.got(); !slices.Equal(got, want) {
		t.Errorf("calls:\n%q\nwant:\n%q", got, want)
	}
	if !strings.Contains(log.String(), "unmounted=4 read_only=2") {
		t.Errorf("log:\n%s", log)
	}
}

// TestHaltCalls: stray processes get SIGTERM, and SIGKILL only when some
// are left; each action has its reboot(2) command.
func TestHaltCalls(t *testing.T) {
	m, fs, _ := newTestMachine(t, "")
	writeFiles(t, m.root, map[string]string{"proc/self/mountinfo": "1 1 0:2 / / rw - tmpfs tmpfs rw\n"})
	m.killAll()
	if got := fs.got(); !slices.Equal(got, []string{"killall SIGTERM"}) {
		t.Errorf("with no child left: %q, want SIGTERM alone", got)
	}
	for _, c := range []struct {
		a    Action
		want int
	}{{PowerOff, unix.LINUX_REBOOT_CMD_POWER_OFF}, {Restart, unix.LINUX_REBOOT_CMD_RESTART}} {
		if c.a.rebootCmd() != c.want {
			t.Errorf("%v: reboot command %#x, want %#x", c.a, c.a.rebootCmd(), c.want)
		}
	}
}

func TestActionOf(t *testing.T) {
	for sig, want := range map[unix.Signal]struct {
		a  Action
		ok bool
	}{
		unix.SIGTERM: {PowerOff, true}, unix.SIGINT: {PowerOff, true}, unix.SIGPWR: {PowerOff, true},
		RestartSignal: {Restart, true}, unix.SIGHUP: {PowerOff, false}, unix.SIGUSR1: {PowerOff, false},
	} {
		if a, ok := actionOf(sig); a != want.a || ok != want.ok {
			t.Errorf("%v: %v %v, want %v %v", sig, a, ok, want.a, want.ok)
		}
	}
}

// TestBootRefuses: in a process that is not PID 1 of the initial PID
// namespace, Boot refuses and changes nothing.
func TestBootRefuses(t *testing.T) {
	if err := Boot(Options{}); !errors.Is(err, ErrNotInit) {
		t.Fatalf("Boot in a test process: %v, want ErrNotInit", err)
	}
	for _, c := range []struct {
		pid  int
		ino  uint64
		want bool
	}{{1, initialPidNSInode, true}, {1, 4026532000, false}, {2, initialPidNSInode, false}, {1, 0, false}} {
		if got := isInitialPidNS(c.pid, c.ino); got != c.want {
			t.Errorf("isInitialPidNS(%d, %#x) = %v", c.pid, c.ino, got)
		}
	}
}

// TestInitSystemFailure: an init system that cannot run (here: no output
// for its tasks) is logged and powers the machine off; a panic of its
// loop becomes an error with its stack.
func TestInitSystemFailure(t *testing.T) {
	m, _, log := newTestMachine(t, "")
	if a := m.run(Options{}, slog.New(slog.NewTextHandler(log, nil)), supervisor.NewConsole(log)); a != PowerOff {
		t.Errorf("action %v, want poweroff", a)
	}
	if !strings.Contains(log.String(), `msg="the init system failed: powering off"`) {
		t.Errorf("log:\n%s", log)
	}
	err := guarded(func() error { panic("the loop broke") })
	if err == nil || !strings.Contains(err.Error(), "panic: the loop broke") || !strings.Contains(err.Error(), "guarded") {
		t.Errorf("guarded panic: %v, want the panic and its stack", err)
	}
}

// TestSignalsAction: the first signal that ends the machine says how;
// SIGHUP and SIGUSR1 pass through and decide nothing; a power-button
// press arrives as SIGPWR.
func TestSignalsAction(t *testing.T) {
	m, _, _ := newTestMachine(t, "")
	m.button = make(chan struct{}, 1)
	sigs, action, stop := m.signals()
	defer stop()
	if err := unix.Kill(os.Getpid(), unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := <-sigs; got != unix.SIGHUP || action() != PowerOff {
		t.Fatalf("SIGHUP came as %v, action %v", got, action())
	}
	if err := unix.Kill(os.Getpid(), RestartSignal); err != nil {
		t.Fatal(err)
	}
	if got := <-sigs; got != RestartSignal || action() != Restart {
		t.Fatalf("SIGUSR2 came as %v, action %v", got, action())
	}
	m.button <- struct{}{}
	if got := <-sigs; got != unix.SIGPWR || action() != Restart {
		t.Fatalf("the power button came as %v, action %v (the first that ends the machine decides)", got, action())
	}
}

// TestStrays: user processes are those with a command line, this one
// aside; kernel threads and zombies have none.
func TestStrays(t *testing.T) {
	root := t.TempDir()
	for pid, cmdline := range map[string]string{"1": "/init\x00", "2": "", "40": "sh\x00-c\x00", "41": "", "self": "x"} {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "cmdline"), []byte(cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := strays(root, 1); !slices.Equal(got, []int{40}) {
		t.Fatalf("strays %v, want [40]", got)
	}
}
