package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel/qemu"
	"github.com/lf-edge/moor/internal/evebox"
	"github.com/lf-edge/moor/supervisor"
)

// These tests boot moor as a machine's init: `moor initramfs` packs a
// containers tree, and Debian's kernel boots it under qemu TCG with moor
// as /init. Everything the tree runs runs inside the guest.

// machineBootTimeout bounds a boot to all services running (under TCG
// the kernel alone takes 5–10 s, and each task's start 1–2 s).
const machineBootTimeout = 60 * time.Second

// machineTree is a containers tree for a machine's image; every task
// shares a read-only busybox root at /containers/rootfs.
type machineTree struct {
	Dir string
}

func newMachineTree(t *testing.T) *machineTree {
	t.Helper()
	dir := filepath.Join(scratch, taskID(t))
	t.Cleanup(func() { os.RemoveAll(dir) })
	tr := &machineTree{Dir: filepath.Join(dir, "containers")}
	if err := os.MkdirAll(tr.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", busyboxRoot, filepath.Join(tr.Dir, "rootfs")).CombinedOutput(); err != nil {
		t.Fatalf("copy busybox root: %v: %s", err, out)
	}
	return tr
}

// machineLimits are the limits of every task of these trees.
const (
	machineMemory = 64 << 20
	machinePids   = 64
)

// add writes the bundle kind/name running script in sh, in its own
// namespaces (PID and cgroup among them: the task's cgroup is its
// /sys/fs/cgroup), with 64 MiB and 64 PIDs at most, in the cgroup moor
// supervise gives it (/services.linuxkit/<id>); edit, when set, changes
// the spec last.
func (tr *machineTree) add(t *testing.T, kind, name, script string, annotations map[string]string, edit func(*specs.Spec)) {
	t.Helper()
	s := specconv.Example()
	s.Root = &specs.Root{Path: "/containers/rootfs", Readonly: true}
	s.Process.Terminal = false
	s.Process.Args = []string{"sh", "-c", script}
	s.Hostname = name
	limit, pids := int64(machineMemory), int64(machinePids)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
	s.Linux.Namespaces = append(evebox.Without(s.Linux.Namespaces, specs.CgroupNamespace), specs.LinuxNamespace{Type: specs.CgroupNamespace})
	s.Annotations = annotations
	if edit != nil {
		edit(s)
	}
	dir := filepath.Join(tr.Dir, kind, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// withBoot lets a task call reboot(2) (in its PID namespace).
func withBoot(s *specs.Spec) {
	c := s.Process.Capabilities
	for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted} {
		*set = append(*set, "CAP_SYS_BOOT")
	}
}

// debianKernel is Debian's kernel image and its release.
func debianKernel(t *testing.T) (kernel, release string) {
	t.Helper()
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		t.Fatal("no kernel in /boot (apt-get install linux-image-amd64)")
	}
	kernel = kernels[len(kernels)-1]
	return kernel, strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
}

// machineHostname is the host name the trees' images give their machine.
const machineHostname = "machine-test"

// image runs moor initramfs for the tree with the power button's modules.
func (tr *machineTree) image(t *testing.T, release string) string {
	t.Helper()
	out := filepath.Join(filepath.Dir(tr.Dir), "initrd.gz")
	r := moor(t, "initramfs", "--containers", tr.Dir, "--modules", "button,evdev", "--kernel-version", release,
		"--hostname", machineHostname, "--out", out)
	if r.Code != 0 {
		t.Fatalf("moor initramfs: %v", r)
	}
	return out
}

// guestMachine is a qemu process booting a machine's image; it is the
// test's child, killed by its PID at cleanup if it has not exited.
type guestMachine struct {
	cmd     *exec.Cmd
	console string // the serial console's file
	qmp     string // the QMP socket
	done    chan error
}

// machineQemuArgs is the one qemu command line that boots an image:
// TCG, no network, the serial console to a file, QMP on a socket, and
// -no-reboot so that a restart ends qemu too.
func machineQemuArgs(kernel, initrd, console, qmpSock, cmdline string) []string {
	return []string{
		"-machine", "q35", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot",
		"-serial", "file:" + console, "-qmp", "unix:" + qmpSock + ",server=on,wait=off",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet " + cmdline,
	}
}

// bootMachine boots the tree's image with Debian's kernel.
func bootMachine(t *testing.T, tr *machineTree, cmdline string) *guestMachine {
	t.Helper()
	requireQemu(t)
	kernel, release := debianKernel(t)
	initrd := tr.image(t, release)
	dir := filepath.Dir(tr.Dir)
	g := &guestMachine{console: filepath.Join(dir, "console.log"), qmp: filepath.Join(dir, "qmp.sock"), done: make(chan error, 1)}
	g.cmd = exec.Command("qemu-system-x86_64", machineQemuArgs(kernel, initrd, g.console, g.qmp, cmdline)...)
	qlog := tempFile(t)
	g.cmd.Stdout, g.cmd.Stderr = qlog, qlog
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go func() { g.done <- g.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			_ = g.cmd.Process.Kill() // by its PID: our own child
			<-g.done
		}
		if t.Failed() {
			t.Logf("qemu: %s\nconsole:\n%s", readBack(t, qlog), g.consoleText())
		}
	})
	return g
}

func (g *guestMachine) consoleText() string {
	b, _ := os.ReadFile(g.console)
	return string(b)
}

// waitConsole waits for the console to match re, and returns the match.
func (g *guestMachine) waitConsole(t *testing.T, timeout time.Duration, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	waitFor(t, timeout, "console to show "+re, func() bool {
		m = rx.FindStringSubmatch(g.consoleText())
		return m != nil
	})
	return m
}

// figures logs the boot's figures moor prints at READY: the kernel's
// uptime when every service runs, and moor's RSS as PID 1.
func (g *guestMachine) figures(t *testing.T) (bootMs, rssKiB int) {
	t.Helper()
	m := g.waitConsole(t, machineBootTimeout, `msg="machine ready" component=machine boot_ready_ms=(\d+) rss_kib=(\d+)`)
	bootMs, _ = strconv.Atoi(m[1])
	rssKiB, _ = strconv.Atoi(m[2])
	t.Logf("machine figures: boot_ready_ms=%d (kernel uptime with every service running, TCG), moor RSS as PID 1 %d KiB", bootMs, rssKiB)
	return bootMs, rssKiB
}

// qmpRun runs one QMP command.
func (g *guestMachine) qmpRun(t *testing.T, command string, args any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mon, err := qemu.Dial(ctx, g.qmp)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	if _, err := mon.Execute(ctx, command, args); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits for qemu to exit by itself (the guest powered off or
// restarted) and says how long it took.
func (g *guestMachine) waitExit(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	select {
	case err := <-g.done:
		g.done <- err // for Cleanup
		if err != nil {
			t.Errorf("qemu exited with %v", err)
		}
	case <-time.After(timeout):
		t.Fatalf("qemu still runs %v later: the guest did not go down", timeout)
	}
	return time.Since(t0)
}

// before fails the test unless a comes before b on the console.
func before(t *testing.T, console, a, b string) {
	t.Helper()
	i, j := strings.Index(console, a), strings.Index(console, b)
	if i < 0 || j < 0 || i > j {
		t.Errorf("console: want %q (at %d) before %q (at %d)", a, i, b, j)
	}
}

// webScript prints the task's limits as its cgroup files in the guest
// say (v2, else v1), and traps SIGTERM.
const webScript = `trap 'echo web got TERM; exit 0' TERM
cg=/sys/fs/cgroup
if [ -e $cg/memory.max ]; then mem=$(cat $cg/memory.max) pids=$(cat $cg/pids.max); else mem=$(cat $cg/memory/memory.limit_in_bytes) pids=$(cat $cg/pids/pids.max); fi
echo "limits memory=$mem pids=$pids"
grep -E '^0::|memory' /proc/self/cgroup
while :; do sleep 0.2; done`

// machineGrace is the services' stop timeout in these trees.
const machineGrace = 3 * time.Second

// machineDownMargin is what a TCG guest takes beyond the grace to stop
// its tasks, unmount and power off.
const machineDownMargin = 20 * time.Second

// TestMachineCtrlAltDel is issue 14's acceptance: moor initramfs and one
// qemu command boot a tree whose onboot task's output comes before the
// services'; the services run with their limits in the guest's cgroupfs
// (v2 by default); a crashing service is restarted by policy; Ctrl-Alt-Del
// (QMP send-key) arrives as SIGINT, the services' SIGTERM traps print, and
// the guest powers off: qemu exits by itself.
func TestMachineCtrlAltDel(t *testing.T) {
	tr := newMachineTree(t)
	grace := map[string]string{supervisor.StopTimeoutAnnotation: machineGrace.String()}
	// In the guest's network and UTS namespaces: it sees lo and the name.
	tr.add(t, "onboot", "000-hello", `echo onboot says hello; echo "host=$(hostname) lo=$(ip -o link show lo | grep -o '<[^>]*>')"`, nil,
		func(s *specs.Spec) {
			s.Linux.Namespaces = evebox.Without(s.Linux.Namespaces, specs.NetworkNamespace, specs.UTSNamespace)
			s.Hostname = ""
		})
	tr.add(t, "services", "010-web", webScript, grace, nil)
	tr.add(t, "services", "020-crasher", "echo crasher run; sleep 0.5; exit 3", map[string]string{supervisor.RestartAnnotation: "always"}, nil)
	g := bootMachine(t, tr, "")
	g.figures(t)
	g.waitConsole(t, 10*time.Second, `\[web\] limits`)
	g.waitConsole(t, 20*time.Second, `(?s)\[crasher\] crasher run.*restarting service.*id=crasher.*\[crasher\] crasher run`)

	con := g.consoleText()
	for _, want := range []string{
		`msg="cgroup mode" component=machine mode=v2`,
		fmt.Sprintf("[web] limits memory=%d pids=%d", machineMemory, machinePids),
		"[web] 0::/", // in a cgroup namespace of its own, rooted at its cgroup:
		"[hello] host=" + machineHostname + " lo=<LOOPBACK,UP,LOWER_UP>",
		`msg="kernel modules loaded" component=machine modules=button,evdev`,
	} {
		if !strings.Contains(con, want) {
			t.Errorf("console has no %q", want)
		}
	}
	if !regexp.MustCompile(`msg="task created" namespace=services\.linuxkit id=web pid=\d+ cgroup=/services\.linuxkit/web\b`).MatchString(con) {
		t.Error("console: the web task was not created in cgroup /services.linuxkit/web")
	}
	before(t, con, "[hello] onboot says hello", "[web] ")
	before(t, con, "[hello] onboot says hello", "[crasher] ")

	g.qmpRun(t, "send-key", map[string]any{"keys": []map[string]string{
		{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}}})
	took := g.waitExit(t, machineGrace+machineDownMargin)
	t.Logf("Ctrl-Alt-Del to qemu's exit: %v", took)
	con = g.consoleText()
	for _, want := range []string{`msg="machine shutdown requested" component=machine signal=SIGINT action=poweroff`,
		"[web] web got TERM", `msg="machine down" component=machine action=poweroff`, "reboot: Power down"} {
		if !strings.Contains(con, want) {
			t.Errorf("console has no %q", want)
		}
	}
}

// TestMachinePowerButton: under hybrid cgroups (moor.cgroup=hybrid), a
// task that runs reboot -f inside is restarted; one that runs poweroff -f
// inside stops for good; the ACPI power button (QMP system_powerdown)
// shuts the machine down as Ctrl-Alt-Del does.
func TestMachinePowerButton(t *testing.T) {
	tr := newMachineTree(t)
	grace := map[string]string{supervisor.StopTimeoutAnnotation: machineGrace.String()}
	tr.add(t, "services", "010-web", webScript, grace, nil)
	// The marker outlives the task's restart in the guest's /tmp.
	tr.add(t, "services", "020-rebooter", `if [ -e /shared/rebooted ]; then echo rebooter back; trap 'exit 0' TERM; while :; do sleep 0.2; done; fi
touch /shared/rebooted; echo rebooter run; reboot -f`, map[string]string{supervisor.RestartAnnotation: "no", supervisor.StopTimeoutAnnotation: "1s"},
		func(s *specs.Spec) {
			withBoot(s)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: "/tmp", Options: []string{"rbind", "rw"}})
		})
	tr.add(t, "services", "030-poweroffer", "echo poweroffer run; poweroff -f; sleep 1000",
		map[string]string{supervisor.RestartAnnotation: "always"}, withBoot)
	g := bootMachine(t, tr, "moor.cgroup=hybrid")
	g.figures(t)
	g.waitConsole(t, 20*time.Second, `\[rebooter\] rebooter back`)
	g.waitConsole(t, 20*time.Second, `msg="service powered off: it stays stopped" component=supervise id=poweroffer`)
	g.waitConsole(t, 10*time.Second, `\[web\] limits`)

	con := g.consoleText()
	for _, want := range []string{
		`msg="cgroup mode" component=machine mode=hybrid why="moor.cgroup=hybrid"`,
		fmt.Sprintf("[web] limits memory=%d pids=%d", machineMemory, machinePids),
		`msg="watching power button" component=machine device=/dev/input/`,
		`msg="restarting service" component=supervise id=rebooter`,
	} {
		if !strings.Contains(con, want) {
			t.Errorf("console has no %q", want)
		}
	}
	if n := strings.Count(con, "[poweroffer] poweroffer run"); n != 1 {
		t.Errorf("the task that powered off ran %d times, want once", n)
	}
	before(t, con, "[rebooter] rebooter run", "[rebooter] rebooter back")

	g.qmpRun(t, "system_powerdown", nil)
	took := g.waitExit(t, machineGrace+machineDownMargin)
	t.Logf("power button to qemu's exit: %v", took)
	con = g.consoleText()
	for _, want := range []string{`msg="power button pressed" component=machine`,
		`msg="machine shutdown requested" component=machine signal=SIGPWR action=poweroff`,
		"[web] web got TERM", "reboot: Power down"} {
		if !strings.Contains(con, want) {
			t.Errorf("console has no %q", want)
		}
	}
	if n := strings.Count(con, "[poweroffer] poweroffer run"); n != 1 {
		t.Errorf("the task that powered off ran %d times by the end, want once", n)
	}
}

// TestMachineRestart: SIGUSR2 to the machine's moor (here from a task in
// the guest's own PID namespace) shuts the tree down and restarts the
// machine: the kernel says so, and qemu (-no-reboot) exits.
func TestMachineRestart(t *testing.T) {
	tr := newMachineTree(t)
	tr.add(t, "services", "010-web", `trap 'echo web got TERM; exit 0' TERM; echo web up; while :; do sleep 0.2; done`,
		map[string]string{supervisor.StopTimeoutAnnotation: machineGrace.String()}, nil)
	// In the guest's PID namespace, PID 1 is moor. This task runs only
	// in the guest, never on the host.
	tr.add(t, "services", "020-restarter", "sleep 1; echo asking; kill -USR2 1; trap 'exit 0' TERM; while :; do sleep 0.2; done",
		map[string]string{supervisor.StopTimeoutAnnotation: machineGrace.String()}, func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.PIDNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		})
	g := bootMachine(t, tr, "")
	took := g.waitExit(t, machineBootTimeout+machineDownMargin)
	t.Logf("restart asked to qemu's exit: %v", took)
	con := g.consoleText()
	for _, want := range []string{`msg="machine shutdown requested" component=machine signal=SIGUSR2 action=restart`,
		"[web] web got TERM", "reboot: Restarting system"} {
		if !strings.Contains(con, want) {
			t.Errorf("console has no %q", want)
		}
	}
}
