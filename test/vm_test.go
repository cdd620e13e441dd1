package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
)

// vmCgroupParent holds the cgroups of this file's hypervisor tasks.
var vmCgroupParent = cgroupRunParent + "-vm"

// Console markers the test guest's init prints.
const (
	markerReady     = "MOOR-GUEST-READY"
	markerPowerdown = "MOOR-GUEST-POWERDOWN"
)

// vmTask is one hypervisor task of a test.
type vmTask struct {
	ID     string
	Dir    string // the bundle
	RunDir string // the bundle's run directory
	Log    string // the anchor's stdout and stderr
	PID    int
}

// newVMTask writes the VM description and runs moor vm spec for it.
func newVMTask(t *testing.T, vm map[string]any, specArgs ...string) *vmTask {
	t.Helper()
	return newVMTaskBy(t, moorBin, vm, specArgs...)
}

// newVMTaskBy is newVMTask with the moor binary that runs moor vm spec.
func newVMTaskBy(t *testing.T, moor string, vm map[string]any, specArgs ...string) *vmTask {
	t.Helper()
	id := taskID(t)
	v := &vmTask{ID: id, Dir: filepath.Join(scratch, id)}
	v.RunDir, v.Log = filepath.Join(v.Dir, "vm"), filepath.Join(v.Dir, "anchor.log")
	if err := os.MkdirAll(v.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(v.Dir) })
	vm["name"] = id
	desc := filepath.Join(v.Dir, "vm-description.json")
	b, _ := json.Marshal(vm)
	if err := os.WriteFile(desc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--root", stateRoot, "vm", "spec", "--vm", desc, "--bundle", v.Dir,
		"--cgroups-path", vmCgroupParent + "/" + id}, specArgs...)
	if out, err := exec.Command(moor, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", moor, strings.Join(args, " "), err, out)
	}
	return v
}

// start creates and starts the task, its output in v.Log.
func (v *vmTask) start(t *testing.T) {
	t.Helper()
	log, err := os.Create(v.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	t.Cleanup(func() {
		moor(t, "delete", "--force", v.ID)
		if t.Failed() {
			b, _ := os.ReadFile(v.Log)
			t.Logf("anchor log of %s:\n%s", v.ID, b)
			b, _ = os.ReadFile(filepath.Join(v.RunDir, "console.log"))
			t.Logf("console of %s:\n%s", v.ID, b)
		}
	})
	cmd := moorCmd("create", "--bundle", v.Dir, v.ID)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(v.Log)
		t.Fatalf("moor create %s: %v\n%s", v.ID, err, b)
	}
	mustMoor(t, "start", v.ID)
	v.PID = taskState(t, v.ID).PID
}

// runState reads the anchor's run-state file; nil before it is written.
func (v *vmTask) runState(t *testing.T) *devicemodel.RunState {
	t.Helper()
	st, err := devicemodel.ReadRunState(map[string]string{devicemodel.AnnotationRunDir: v.RunDir})
	if err != nil {
		return nil
	}
	return st
}

// waitRunState polls the run state until cond holds.
func (v *vmTask) waitRunState(t *testing.T, timeout time.Duration, what string, cond func(*devicemodel.RunState) bool) *devicemodel.RunState {
	t.Helper()
	var st *devicemodel.RunState
	waitFor(t, timeout, what, func() bool {
		st = v.runState(t)
		return st != nil && cond(st)
	})
	return st
}

// waitConsole polls the console log until it holds marker.
func (v *vmTask) waitConsole(t *testing.T, timeout time.Duration, marker string) {
	t.Helper()
	waitFor(t, timeout, "console marker "+marker, func() bool {
		b, _ := os.ReadFile(filepath.Join(v.RunDir, "console.log"))
		return bytes.Contains(b, []byte(marker))
	})
}

// waitExit waits for the anchor to exit and says how long it took.
func (v *vmTask) waitExit(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	waitFor(t, timeout, fmt.Sprintf("anchor %d to exit", v.PID), func() bool { return !alive(v.PID) })
	return time.Since(t0)
}

// deleteAndCheck deletes the task and checks it left nothing: no cgroup,
// no sockets, pidfile or run state.
func (v *vmTask) deleteAndCheck(t *testing.T) {
	t.Helper()
	mustMoor(t, "delete", v.ID)
	if !vmCgroupGone(t, v.ID) {
		t.Errorf("cgroup %s/%s is left after delete", vmCgroupParent, v.ID)
	}
	for _, f := range []string{"qmp", "listener.qmp", "cons", "pid", devicemodel.RunStateFile} {
		if _, err := os.Stat(filepath.Join(v.RunDir, f)); err == nil {
			t.Errorf("%s is left in the run directory after delete", f)
		}
	}
}

func vmCgroupGone(t *testing.T, id string) bool {
	t.Helper()
	for _, base := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(base, vmCgroupParent, id)); err == nil {
			return false
		}
	}
	return true
}

// vmCgroupFile reads a file of the task's v1 memory or unified cgroup.
func vmCgroupFile(t *testing.T, controller, id, name string) string {
	t.Helper()
	for _, base := range []string{"/sys/fs/cgroup/" + controller, "/sys/fs/cgroup"} {
		if b, err := os.ReadFile(filepath.Join(base, vmCgroupParent, id, name)); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("read %s of cgroup %s/%s: not found", name, vmCgroupParent, id)
	return ""
}

// procChildren lists a process's children (all its threads').
func procChildren(pid int) []int {
	var kids []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, tk := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, tk.Name()))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				kids = append(kids, n)
			}
		}
	}
	return kids
}

func procComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// rssKiB is a process's VmRSS.
func rssKiB(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func signalPID(t *testing.T, pid int, sig unix.Signal) {
	t.Helper()
	if err := unix.Kill(pid, sig); err != nil {
		t.Fatalf("signal anchor %d with %v: %v", pid, sig, err)
	}
}

// guest is the kernel and initramfs of the test guest, built once.
var guest struct {
	once           sync.Once
	kernel, initrd string
	err            error
}

// testGuest returns Debian's kernel and an initramfs built from
// busybox-static whose /init follows moortest= on the kernel command line:
// acpi (busybox acpid powers off on the power button), ignore (no ACPI
// handling at all) or selfoff (powers off at once).
func testGuest(t *testing.T) (kernel, initrd string) {
	t.Helper()
	guest.once.Do(func() { guest.kernel, guest.initrd, guest.err = buildGuest(filepath.Join(scratch, "vm-guest")) })
	if guest.err != nil {
		t.Fatalf("build test guest: %v", guest.err)
	}
	return guest.kernel, guest.initrd
}

const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mode=$(sed -n 's/.*moortest=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "MOOR-GUEST-UP mode=$mode disk=$(cat /sys/block/vda/size 2>/dev/null)" > /dev/console
case "$mode" in
acpi)
	insmod /lib/modules/button.ko
	insmod /lib/modules/evdev.ko
	until ls /dev/input/event* >/dev/null 2>&1; do sleep 0.1; done
	mkdir -p /var/log /var/run
	acpid
	sleep 1
	echo MOOR-GUEST-READY > /dev/console
	;;
selfoff)
	echo MOOR-GUEST-READY > /dev/console
	poweroff -f
	;;
*)
	echo MOOR-GUEST-READY > /dev/console
	;;
esac
while true; do sleep 60; done
`

const guestPowerButton = "#!/bin/sh\necho MOOR-GUEST-POWERDOWN > /dev/console\npoweroff -f\n"

func buildGuest(dir string) (string, string, error) {
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		return "", "", fmt.Errorf("no kernel in /boot (apt-get install linux-image-amd64)")
	}
	kernel := kernels[len(kernels)-1]
	ver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", "", fmt.Errorf("apt-get install busybox-static: %w", err)
	}
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "dev", "proc", "sys", "lib/modules", "etc/acpi/PWRF"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", "", err
		}
	}
	copies := map[string]string{
		bb: "bin/busybox",
		filepath.Join("/lib/modules", ver, "kernel/drivers/acpi/button.ko"): "lib/modules/button.ko",
		filepath.Join("/lib/modules", ver, "kernel/drivers/input/evdev.ko"): "lib/modules/evdev.ko",
	}
	for src, dst := range copies {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", "", fmt.Errorf("apt-get install linux-image-amd64 busybox-static: %w", err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o755); err != nil {
			return "", "", err
		}
	}
	files := map[string]string{"init": guestInit, "etc/acpi/PWRF/00000080": guestPowerButton}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o755); err != nil {
			return "", "", err
		}
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet > "+initrd)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("cpio (apt-get install cpio): %w: %s", err, out)
	}
	return kernel, initrd, nil
}

// requireQemu fails the test when qemu is missing: CI installs it.
func requireQemu(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatalf("qemu is not installed (apt-get install qemu-system-x86): %v", err)
	}
}

// bootVM boots the test guest under TCG in mode and waits for its marker.
func bootVM(t *testing.T, mode string, grace time.Duration) *vmTask {
	t.Helper()
	requireQemu(t)
	kernel, initrd := testGuest(t)
	disk := filepath.Join(scratch, taskID(t)+".img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(disk) })
	v := newVMTask(t, map[string]any{
		"hypervisor": "tcg", "memoryMiB": 128, "vcpus": 1,
		"kernel": kernel, "initrd": initrd, "cmdline": "console=ttyS0 quiet panic=-1 moortest=" + mode,
		"disks": []map[string]any{{"path": disk, "readonly": true}},
	}, "--host-root", "--grace", grace.String())
	v.start(t)
	v.waitConsole(t, 60*time.Second, markerReady)
	if st := v.runState(t); mode != "selfoff" && (st == nil || st.State != devicemodel.GuestRunning) {
		t.Fatalf("run state after boot: %+v, want running", st)
	}
	return v
}

// TestVMAcceptance is issue 4's acceptance: the description's defaults,
// the host's root, the anchor as the task's PID with qemu under it, the
// memory limit of RAM plus the tax, SIGTERM ending qemu and the task within
// the grace period, and a delete that leaves nothing.
func TestVMAcceptance(t *testing.T) {
	requireQemu(t)
	const grace = 5 * time.Second
	v := newVMTask(t, map[string]any{"memoryMiB": 128, "vcpus": 1}, "--host-root", "--grace", grace.String())
	v.start(t)
	checkAnchor(t, v.PID, leanAnchor(), "--dir")
	st := v.waitRunState(t, 30*time.Second, "guest running", func(s *devicemodel.RunState) bool { return s.State != devicemodel.GuestStarting })
	if st.State != devicemodel.GuestRunning {
		t.Fatalf("run state %+v, want running", st)
	}
	qemuPID := qemuOf(t, v.PID)
	vm := &devicemodel.VM{MemoryMiB: 128, VCPUs: 1}
	want := devicemodel.MemoryLimit(vm) &^ 4095 // the kernel keeps whole pages
	if got := vmCgroupFile(t, "memory", v.ID, "memory.limit_in_bytes"); got != strconv.FormatInt(want, 10) {
		t.Errorf("memory limit %s, want %d (128 MiB + tax %d MiB)", got, want, devicemodel.Overhead(vm)>>20)
	}
	fmt.Printf("vm acceptance: anchor RSS %d KiB (run state: %d KiB), qemu RSS %d KiB, tax %.1f MiB\n",
		rssKiB(v.PID), st.AnchorRSSKiB, rssKiB(qemuPID), float64(devicemodel.Overhead(vm))/(1<<20))

	signalPID(t, v.PID, unix.SIGTERM)
	took := v.waitExit(t, grace+10*time.Second)
	if alive(qemuPID) {
		t.Errorf("qemu %d outlived its anchor", qemuPID)
	}
	end := v.runState(t)
	if end == nil || end.End == "" {
		t.Fatalf("no end in the run state: %+v", end)
	}
	t.Logf("SIGTERM ended the task in %v: %+v", took, end)
	if took > grace+6*time.Second {
		t.Errorf("the task took %v to end, grace %v", took, grace)
	}
	v.deleteAndCheck(t)
}

func procCmdline(pid int) []string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	f := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for len(f) < 2 {
		f = append(f, "")
	}
	return f
}

// TestVMBootACPIPowerdown boots a real guest, sees its marker on the
// console, and powers it down through ACPI with SIGTERM to the anchor.
func TestVMBootACPIPowerdown(t *testing.T) {
	v := bootVM(t, "acpi", 30*time.Second)
	fmt.Printf("vm boot: anchor RSS %d KiB with a running guest\n", rssKiB(v.PID))
	signalPID(t, v.PID, unix.SIGTERM)
	took := v.waitExit(t, 30*time.Second)
	v.waitConsole(t, time.Second, markerPowerdown)
	st := v.runState(t)
	if st == nil || st.End != devicemodel.EndPoweroff || st.State != devicemodel.GuestShutdown {
		t.Fatalf("run state %+v, want shutdown and end poweroff", st)
	}
	t.Logf("guest powered down through ACPI in %v: %+v", took, st)
	v.deleteAndCheck(t)
}

// TestVMBootIgnoresACPI boots a guest that ignores the power button: the
// anchor stops it hard after the grace period. On the way it pauses and
// resumes the guest with SIGUSR1 and SIGUSR2.
func TestVMBootIgnoresACPI(t *testing.T) {
	const grace = 3 * time.Second
	v := bootVM(t, "ignore", grace)
	signalPID(t, v.PID, unix.SIGUSR1)
	v.waitRunState(t, 10*time.Second, "guest paused", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestPaused })
	signalPID(t, v.PID, unix.SIGUSR2)
	v.waitRunState(t, 10*time.Second, "guest running again", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestRunning })

	t0 := time.Now()
	signalPID(t, v.PID, unix.SIGTERM)
	v.waitExit(t, grace+15*time.Second)
	took := time.Since(t0)
	st := v.runState(t)
	if st == nil || st.End != devicemodel.EndForced {
		t.Fatalf("run state %+v, want end forced", st)
	}
	if took < grace {
		t.Errorf("the guest was stopped after %v, before the grace period %v", took, grace)
	}
	t.Logf("guest ignoring ACPI stopped hard after %v: %+v", took, st)
	v.deleteAndCheck(t)
}

// TestVMBootSelfPoweroff boots a guest that powers itself off: the task
// ends with it.
func TestVMBootSelfPoweroff(t *testing.T) {
	v := bootVM(t, "selfoff", 10*time.Second)
	v.waitExit(t, 30*time.Second)
	st := v.runState(t)
	if st == nil || st.End != devicemodel.EndPoweroff || st.Reason != "guest-shutdown" {
		t.Fatalf("run state %+v, want end poweroff by guest-shutdown", st)
	}
	v.deleteAndCheck(t)
}
