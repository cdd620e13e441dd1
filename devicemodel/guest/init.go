package guest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/reaper"
)

// portTimeout bounds the wait for the app's ports once the modules are
// loaded (under TCG the devices take a while to probe).
const portTimeout = 30 * time.Second

// drainTimeout bounds the wait for the processes left after the app to
// die once killed.
const drainTimeout = 5 * time.Second

// Run is the guest init. It never returns: it powers the guest off.
func Run() {
	if os.Getpid() != 1 {
		logf("not PID 1 of a guest: refusing to run")
		os.Exit(ExitSetup)
	}
	rp := reaper.NewReaper() // the guest's one reaper, from the start
	rp.OnOrphan(func(reaper.Reaped) {})
	g := &guest{root: "/", sys: linux{}, self: "/proc/self/exe"}
	g.port = func(name string) (*os.File, error) { return g.findPort(name, portTimeout) }
	g.run(rp)
	g.powerOff()
}

// guest is the guest init's world: the root of its file systems, the
// kernel, how it opens the app's ports and the binary it re-executes as
// the exec stage. Run gives it the machine's; unit tests a temp dir, a
// fake kernel, socket pairs and a script.
type guest struct {
	root string // "/" in a guest
	sys  kernel
	port func(name string) (*os.File, error)
	self string
}

// kernel is what the guest init asks of the kernel beside files and
// processes: a fake records it in unit tests, where mounting, killing
// every process and powering off are not to be done.
type kernel interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	FinitModule(fd int, params string, flags int) error
	Sethostname(name []byte) error
	Kill(pid int, sig unix.Signal) error
	Reboot(cmd int) error
	Sync()
}

// linux is the kernel of the guest.
type linux struct{}

func (linux) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}
func (linux) FinitModule(fd int, params string, flags int) error {
	return unix.FinitModule(fd, params, flags)
}
func (linux) Sethostname(name []byte) error       { return unix.Sethostname(name) }
func (linux) Kill(pid int, sig unix.Signal) error { return unix.Kill(pid, sig) }
func (linux) Reboot(cmd int) error                { return unix.Reboot(cmd) }
func (linux) Sync()                               { unix.Sync() }

// path is p, a path of the guest's, below the guest init's root.
func (g *guest) path(p string) string { return filepath.Join(g.root, p) }

// run boots the guest, runs the app and reports how it ended: everything
// but the power off.
func (g *guest) run(rp *reaper.Reaper) {
	c, out, errOut, err := g.boot()
	if err != nil {
		logf("%v", err)
		if c == nil {
			return
		}
		c.send(devicemodel.Message{Kind: devicemodel.MsgError, Text: err.Error()})
		c.report(devicemodel.Message{Kind: devicemodel.MsgExit, Code: ExitSetup})
		return
	}
	exit := g.runApp(rp, c, out, errOut)
	g.killAll()
	g.sys.Sync()
	logf("app ended: %s", exit.String())
	c.report(exit)
}

// boot sets the guest up for the app: the early mounts, the modules, the
// ports, the app's root and mounts, the host name. The control port is
// returned as soon as it is open, even with an error after it.
func (g *guest) boot() (*control, *os.File, *os.File, error) {
	if err := g.earlyMounts(); err != nil {
		return nil, nil, nil, err
	}
	cfg, err := ReadConfig(g.path(ConfigFile))
	if err != nil {
		return nil, nil, nil, err
	}
	if err := g.loadModules(cfg.Modules); err != nil {
		return nil, nil, nil, err
	}
	ports := make([]*os.File, 3)
	for i, name := range []string{devicemodel.PortControl, devicemodel.PortStdout, devicemodel.PortStderr} {
		if ports[i], err = g.port(name); err != nil {
			return nil, nil, nil, err
		}
	}
	c := newControl(ports[0])
	if err := g.mountApp(cfg); err != nil {
		return c, nil, nil, err
	}
	if cfg.Hostname != "" {
		if err := g.sys.Sethostname([]byte(cfg.Hostname)); err != nil {
			return c, nil, nil, fmt.Errorf("set hostname: %w", err)
		}
	}
	return c, ports[1], ports[2], nil
}

// mountApp mounts the app's root and its mounts below AppRoot. A kernel
// file system that will not mount is logged and left out; a share that
// will not is an error. A read-only root the guest overlaid to make its
// mount points is made read-only again once they are used.
func (g *guest) mountApp(cfg *Config) error {
	sealed, err := g.mountRoot(cfg)
	if err != nil {
		return err
	}
	for _, m := range cfg.Mounts {
		if err := g.mount(g.path(AppRoot), m); err != nil {
			if errors.Is(err, errMount) {
				return err
			}
			logf("left out: %v", err)
		}
	}
	if sealed {
		return g.sealRoot()
	}
	return nil
}

// runApp starts the app through the exec stage, forwards the anchor's
// signals to it and says how it ended. A signal before the start ends it
// before it starts.
func (g *guest) runApp(rp *reaper.Reaper, c *control, out, errOut *os.File) devicemodel.Message {
	select {
	case sig := <-c.signals:
		logf("signal %d before the app started: not starting it", sig)
		return devicemodel.Message{Kind: devicemodel.MsgExit, Signal: sig}
	default:
	}
	null, err := os.Open(g.path("/dev/null"))
	if err != nil {
		return setupFailed(c, fmt.Errorf("open /dev/null: %w", err))
	}
	defer null.Close()
	cmd := &exec.Cmd{
		Path: g.self, Args: []string{ExecStage}, Env: []string{},
		Stdin: null, Stdout: out, Stderr: errOut,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	done := make(chan reaper.Reaped, 1)
	if err := rp.Start(cmd, func(r reaper.Reaped) { done <- r }); err != nil {
		return setupFailed(c, fmt.Errorf("start app: %w", err))
	}
	pid := cmd.Process.Pid
	c.send(devicemodel.Message{Kind: devicemodel.MsgStarted, PID: pid})
	for {
		select {
		case sig := <-c.signals:
			if err := g.sys.Kill(pid, unix.Signal(sig)); err != nil {
				logf("signal %d to the app: %v", sig, err)
			}
		case r := <-done:
			if r.Status.Signaled() {
				return devicemodel.Message{Kind: devicemodel.MsgExit, Signal: int(r.Status.Signal())}
			}
			return devicemodel.Message{Kind: devicemodel.MsgExit, Code: r.Status.ExitStatus()}
		}
	}
}

// setupFailed reports the guest init's own failure before the app ran.
func setupFailed(c *control, err error) devicemodel.Message {
	logf("%v", err)
	c.send(devicemodel.Message{Kind: devicemodel.MsgError, Text: err.Error()})
	return devicemodel.Message{Kind: devicemodel.MsgExit, Code: ExitSetup}
}

// killAll kills every process but the init and waits, within
// drainTimeout, until the reaper has collected them.
func (g *guest) killAll() {
	_ = g.sys.Kill(-1, unix.SIGKILL)
	proc := g.path("/proc")
	deadline := time.Now().Add(drainTimeout)
	for delay := time.Millisecond; userProcesses(proc) > 0; delay = min(2*delay, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			logf("%d processes outlived SIGKILL for %v", userProcesses(proc), drainTimeout)
			return
		}
		time.Sleep(delay)
	}
}

// userProcesses counts the processes other than the init and the
// kernel's threads (kthreadd, PID 2, and its children) in proc, a procfs.
func userProcesses(proc string) int {
	n := 0
	entries, _ := os.ReadDir(proc)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 2 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] != "2" {
			n++
		}
	}
	return n
}

// powerOff syncs and powers the guest off; it never returns.
func (g *guest) powerOff() {
	g.sys.Sync()
	if err := g.sys.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		logf("power off: %v", err)
	}
	select {}
}
