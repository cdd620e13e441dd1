package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/lifecycle"
)

// Container apps inside VMs (moor vm spec --app): a busybox app bundle
// whose guest is Debian's kernel under TCG with the initramfs moor builds.

// appMount is where the test apps see their writable volume: /mnt, a
// directory the shared read-only busybox root has already.
const appMount = "/mnt"

// appBundle is a busybox app that runs script with a writable volume (a
// fresh host directory, returned) at appMount.
func appBundle(t *testing.T, script string) (*bundle, string) {
	t.Helper()
	return appBundleIn(t, busyboxRoot, script)
}

// appBundleIn is appBundle with another read-only root, whose /bin/busybox
// runs the script.
func appBundleIn(t *testing.T, root, script string) (*bundle, string) {
	t.Helper()
	return imageBundle(t, root, appMount, "/bin/busybox", "sh", "-c", script)
}

// imageBundle is an app bundle on a read-only root running args, with a
// writable volume (a fresh host directory, returned) at dest.
func imageBundle(t *testing.T, root, dest string, args ...string) (*bundle, string) {
	t.Helper()
	b := newBundle(t, args...)
	b.Spec.Root.Path = root
	data := filepath.Join(b.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: data, Options: []string{"rbind", "rw"}})
	b.write(t)
	return b, data
}

// newAppVM writes the hypervisor task of the app: Debian's kernel under
// TCG, 128 MiB, the host's root for qemu.
func newAppVM(t *testing.T, app *bundle, grace time.Duration, vm map[string]any, specArgs ...string) *vmTask {
	t.Helper()
	requireQemu(t)
	kernel, _ := testGuest(t)
	desc := map[string]any{"hypervisor": "tcg", "memoryMiB": 128, "vcpus": 1, "kernel": kernel}
	for k, v := range vm {
		desc[k] = v
	}
	if desc["mode"] == string(devicemodel.ModeNoHyper) {
		delete(desc, "hypervisor")
		delete(desc, "kernel")
	}
	v := newVMTask(t, desc, append([]string{"--host-root", "--app", app.Dir, "--grace", grace.String()}, specArgs...)...)
	t.Cleanup(func() {
		moor(t, "delete", "--force", v.ID)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(v.RunDir, "console.log"))
			t.Logf("console of %s:\n%s", v.ID, b)
		}
	})
	return v
}

// runApp is `moor run` of the task in the background, its output in
// v.Log; wait says how it exited.
type runApp struct {
	cmd  *exec.Cmd
	done chan struct{}
	code int
}

func (v *vmTask) run(t *testing.T, extra ...string) *runApp {
	t.Helper()
	log, err := os.Create(v.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	args := append(append([]string{"run", "--bundle", v.Dir}, extra...), v.ID)
	r := &runApp{cmd: moorCmd(args...), done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		code, err := exitCode(r.cmd.Wait())
		if err != nil {
			code = -1
		}
		r.code = code
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for moor run to exit and returns its exit status.
func (r *runApp) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(timeout):
		t.Fatalf("moor run did not exit within %v", timeout)
		return 0
	}
}

// runToEnd runs the task with moor run and fails the test unless it
// exits with want within timeout.
func (v *vmTask) runToEnd(t *testing.T, want int, timeout time.Duration, extra ...string) {
	t.Helper()
	if code := v.run(t, extra...).wait(t, timeout); code != want {
		t.Fatalf("moor run exited %d, want %d; output:\n%s", code, want, v.output())
	}
}

// output is the task's output so far.
func (v *vmTask) output() string {
	b, _ := os.ReadFile(v.Log)
	return string(b)
}

// waitOutput polls the task's output until it holds marker.
func (v *vmTask) waitOutput(t *testing.T, timeout time.Duration, marker string) {
	t.Helper()
	waitFor(t, timeout, "task output "+marker, func() bool { return strings.Contains(v.output(), marker) })
}

// checkAppLeftNothing checks, once the task is deleted, that nothing of
// it is left: no qemu of the guest, no process holding its shares, no
// cgroup, no state, no sockets in the run directory.
func checkAppLeftNothing(t *testing.T, v *vmTask, shared ...string) {
	t.Helper()
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		args := procCmdline(pid)
		if strings.HasPrefix(filepath.Base(args[0]), "qemu-system") && strings.Contains(strings.Join(args, " "), " -name "+v.ID+" ") {
			t.Errorf("qemu %d of %s is left: %v", pid, v.ID, args)
		}
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		for _, dir := range shared {
			if bytes.Contains(mi, []byte(" "+dir+" ")) || bytes.Contains(mi, []byte("/run/moor/share/")) {
				t.Errorf("process %d (%s) still mounts a 9p share of %s", pid, procComm(pid), v.ID)
				break
			}
		}
	}
	if !vmCgroupGone(t, v.ID) {
		t.Errorf("cgroup %s/%s is left", vmCgroupParent, v.ID)
	}
	for _, d := range []string{filepath.Join(stateRoot, "default", v.ID), filepath.Join(stateRoot, ".tasks", "default", v.ID)} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("state %s is left", d)
		}
	}
	left, _ := filepath.Glob(filepath.Join(v.RunDir, "*"))
	for _, f := range left {
		switch base := filepath.Base(f); {
		case base == devicemodel.VMFile, base == "qemu.cfg", base == "console.log", strings.HasPrefix(base, "initramfs-"):
		default:
			t.Errorf("%s is left in the run directory", base)
		}
	}
}

// TestVMAppExitStatus: a busybox app prints a marker and exits 7: moor run
// of its VM task exits 7, the marker (stdout and stderr) is in the task's
// output, and moor state shows the app's exit in the run state.
func TestVMAppExitStatus(t *testing.T) {
	app, _ := appBundle(t, "echo MOOR-APP-OUT; echo MOOR-APP-ERR >&2; exit 7")
	v := newAppVM(t, app, 10*time.Second, nil)
	t0 := time.Now()
	v.runToEnd(t, 7, 60*time.Second, "--keep")
	t.Logf("the app's VM ran and ended in %v", time.Since(t0))
	console, _ := os.ReadFile(filepath.Join(v.RunDir, "console.log"))
	for _, marker := range []string{"MOOR-APP-OUT", "MOOR-APP-ERR"} {
		if !strings.Contains(v.output(), marker) {
			t.Errorf("the task's output lacks %s:\n%s", marker, v.output())
		}
		if !bytes.Contains(console, []byte(marker)) {
			t.Errorf("console.log lacks %s:\n%s", marker, console)
		}
	}
	st := taskState(t, v.ID)
	if st.Exit == nil || st.Exit.Code != 7 {
		t.Errorf("moor state: exit %+v, want code 7", st.Exit)
	}
	if st.VM == nil || st.VM.AppExit == nil || st.VM.AppExit.Code != 7 || st.VM.AppExit.Signal != "" || st.VM.End != devicemodel.EndPoweroff || st.VM.AppPID == 0 {
		t.Errorf("moor state: vm %+v (appExit %+v), want appExit code 7 and end poweroff", st.VM, st.VM.AppExit)
	}
	mustMoor(t, "delete", v.ID)
	checkAppLeftNothing(t, v, app.Spec.Root.Path)
}

// TestVMAppVolumeAndReadOnlyRoot: the app writes a file into its
// writable volume, which the host sees once the task ended; a write to
// its read-only root fails inside.
func TestVMAppVolumeAndReadOnlyRoot(t *testing.T) {
	app, data := appBundle(t, "echo from-the-guest > "+appMount+"/out && "+
		"if touch /moor-root-write 2>/dev/null; then echo ROOT-WRITABLE; exit 1; fi; echo ROOT-READONLY")
	v := newAppVM(t, app, 10*time.Second, nil)
	v.runToEnd(t, 0, 60*time.Second)
	if !strings.Contains(v.output(), "ROOT-READONLY") {
		t.Errorf("a write to the read-only root did not fail inside:\n%s", v.output())
	}
	if _, err := os.Stat(filepath.Join(app.Spec.Root.Path, "moor-root-write")); err == nil {
		t.Errorf("the read-only root was written on the host")
	}
	b, err := os.ReadFile(filepath.Join(data, "out"))
	if err != nil || string(b) != "from-the-guest\n" {
		t.Errorf("the host reads %q, %v from the volume, want the app's line", b, err)
	}
	checkAppLeftNothing(t, v, app.Spec.Root.Path, data)
}

// TestVMAppWritableRoot: an app that asks to write its root
// (moor.root.writable, APP.json's rootWritable) writes it inside the
// guest, over an overlay on a tmpfs, and the host's root stays as it was.
func TestVMAppWritableRoot(t *testing.T) {
	b := newBundle(t, "/bin/busybox", "sh", "-c", "echo overlay > /moor-written && cat /moor-written")
	b.Spec.Annotations = map[string]string{"moor.root.writable": "true"}
	b.write(t)
	v := newAppVM(t, b, 10*time.Second, nil)
	v.runToEnd(t, 0, 60*time.Second)
	if !strings.Contains(v.output(), "overlay") {
		t.Errorf("the app did not read back what it wrote to its root:\n%s", v.output())
	}
	if _, err := os.Stat(filepath.Join(busyboxRoot, "moor-written")); err == nil {
		t.Errorf("the app's write reached the host's root")
	}
	checkAppLeftNothing(t, v, busyboxRoot)
}

// TestVMAppSIGTERM: SIGTERM to the anchor reaches the app inside, whose
// trap writes to the volume and exits 3; the guest powers off and the task
// ends within the grace with the app's status. While the app runs, the
// test measures qemu (with two 9p shares) against the anchor tax, and
// pauses and resumes the guest with SIGUSR1 and SIGUSR2.
func TestVMAppSIGTERM(t *testing.T) {
	const grace = 15 * time.Second
	app, data := appBundle(t, "trap 'echo trapped > "+appMount+"/trap; exit 3' TERM; echo MOOR-APP-READY; "+
		"while true; do sleep 0.1; done")
	v := newAppVM(t, app, grace, nil)
	r := v.run(t)
	v.waitOutput(t, 60*time.Second, "MOOR-APP-READY")
	st := taskState(t, v.ID)
	v.PID = st.PID
	if st.VM == nil || st.VM.AppPID == 0 || st.VM.AppExit != nil {
		t.Fatalf("run state of the running app %+v, want an appPid and no appExit", st.VM)
	}
	measureAppTax(t, v)
	// SIGUSR1 and SIGUSR2 still pause and resume the guest.
	signalPID(t, v.PID, unix.SIGUSR1)
	v.waitRunState(t, 10*time.Second, "guest paused", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestPaused })
	signalPID(t, v.PID, unix.SIGUSR2)
	v.waitRunState(t, 10*time.Second, "guest running again", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestRunning })

	t0 := time.Now()
	signalPID(t, v.PID, unix.SIGTERM)
	code := r.wait(t, grace+15*time.Second)
	took := time.Since(t0)
	if code != 3 {
		t.Errorf("moor run exited %d, want the app's 3; output:\n%s", code, v.output())
	}
	if took > grace {
		t.Errorf("the task took %v to stop, more than the grace %v", took, grace)
	}
	if !strings.Contains(v.output(), "end=poweroff") {
		t.Errorf("the guest did not power off:\n%s", v.output())
	}
	if b, err := os.ReadFile(filepath.Join(data, "trap")); err != nil || string(b) != "trapped\n" {
		t.Errorf("the app's trap left %q, %v in the volume", b, err)
	}
	t.Logf("SIGTERM stopped the app's VM in %v", took)
	checkAppLeftNothing(t, v, app.Spec.Root.Path, data)
}

// TestVMAppDetachedExit: an app VM created and started by the CLI, whose
// anchor no reaper of moor's waits for, ends by the app's trap of SIGTERM
// with 42: moor state reports the app's exit as the task's, exit and
// vm.appExit alike.
func TestVMAppDetachedExit(t *testing.T) {
	app, _ := appBundle(t, "trap 'exit 42' TERM; echo MOOR-APP-READY; while true; do sleep 0.1; done")
	v := newAppVM(t, app, 15*time.Second, nil)
	v.start(t)
	v.waitOutput(t, 60*time.Second, "MOOR-APP-READY")
	mustMoor(t, "kill", v.ID, "TERM")
	st := waitStatus(t, v.ID, lifecycle.Stopped)
	if st.Exit == nil || st.Exit.Code != 42 || st.Exit.Reason != lifecycle.ExitCode || st.Exit.Signal != "" {
		t.Errorf("moor state: exit %+v, want the app's code 42", st.Exit)
	}
	if st.VM == nil || st.VM.AppExit == nil || st.VM.AppExit.Code != 42 || st.VM.End != devicemodel.EndPoweroff {
		t.Errorf("moor state: vm %+v, want appExit code 42 and end poweroff", st.VM)
	}
	mustMoor(t, "delete", v.ID)
	checkAppLeftNothing(t, v, app.Spec.Root.Path)
}

// TestVMAppAnchorKilled: the anchor of a running app VM is SIGKILLed, so
// it cannot finish its run state: moor state reads the guest as crashed
// with its anchor, not as running, and the exit as unknown (the app
// reported none).
func TestVMAppAnchorKilled(t *testing.T) {
	app, _ := appBundle(t, "echo MOOR-APP-READY; while true; do sleep 0.1; done")
	v := newAppVM(t, app, 15*time.Second, nil)
	v.start(t)
	v.waitOutput(t, 60*time.Second, "MOOR-APP-READY")
	if rs := v.runState(t); rs == nil || rs.State != devicemodel.GuestRunning {
		t.Fatalf("run state of the running app %+v", rs)
	}
	signalPID(t, v.PID, unix.SIGKILL)
	st := waitStatus(t, v.ID, lifecycle.Stopped)
	if st.VM == nil || st.VM.State != devicemodel.GuestCrashed || st.VM.End != devicemodel.EndCrashed ||
		!strings.HasPrefix(st.VM.Reason, "anchor ") {
		t.Errorf("moor state: vm %+v, want crashed with its anchor", st.VM)
	}
	if st.Exit == nil || st.Exit.Code != lifecycle.CodeUnknown || st.VM == nil || st.VM.AppExit != nil {
		t.Errorf("moor state: exit %+v, want unknown and no appExit", st.Exit)
	}
	// The file says what state says, once a verb saw the anchor gone.
	if rs := v.runState(t); rs == nil || rs.State != devicemodel.GuestCrashed || rs.End != devicemodel.EndCrashed {
		t.Errorf("runstate.json after the anchor's SIGKILL: %+v, want crashed", rs)
	}
	mustMoor(t, "delete", v.ID)
	checkAppLeftNothing(t, v, app.Spec.Root.Path)
}

// measureAppTax prints qemu's and the anchor's memory with a running app
// and two 9p shares, and checks that the task's memory limit (RAM + tax)
// covers them with room to spare.
func measureAppTax(t *testing.T, v *vmTask) {
	t.Helper()
	qemuPID := qemuOf(t, v.PID)
	vm := &devicemodel.VM{MemoryMiB: 128, VCPUs: 1}
	limit, tax := devicemodel.MemoryLimit(vm), devicemodel.Overhead(vm)
	usage := memoryPeak(t, v.ID)
	qemuKiB, anchorKiB := rssKiB(qemuPID), rssKiB(v.PID)
	fmt.Printf("vm app tax: qemu RSS %d KiB with 2 9p shares and a running app, anchor RSS %d KiB, "+
		"cgroup peak %.1f MiB; limit %.1f MiB = RAM 128 MiB + tax %.1f MiB; qemu beyond its RAM %.1f MiB\n",
		qemuKiB, anchorKiB, float64(usage)/(1<<20), float64(limit)/(1<<20), float64(tax)/(1<<20),
		float64(qemuKiB<<10-vm.MemoryMiB<<20)/(1<<20))
	if (qemuKiB+anchorKiB)<<10 > limit/2 {
		t.Errorf("qemu (%d KiB) and the anchor (%d KiB) hold more than half the limit %d", qemuKiB, anchorKiB, limit)
	}
	if usage > limit*3/4 {
		t.Errorf("the task's memory peaked at %d bytes, too near its limit %d", usage, limit)
	}
}

// qemuOf is the qemu among the anchor's children.
func qemuOf(t *testing.T, anchor int) int {
	t.Helper()
	for _, k := range procChildren(anchor) {
		if strings.HasPrefix(procComm(k), "qemu-system") {
			return k
		}
	}
	t.Fatalf("no qemu among the anchor's children %v", procChildren(anchor))
	return 0
}

// memoryPeak is the task's peak memory use: memory.max_usage_in_bytes
// of cgroup v1, memory.peak of v2.
func memoryPeak(t *testing.T, id string) int64 {
	t.Helper()
	for _, f := range []string{"memory/" + vmCgroupParent + "/" + id + "/memory.max_usage_in_bytes", vmCgroupParent + "/" + id + "/memory.peak"} {
		if b, err := os.ReadFile("/sys/fs/cgroup/" + f); err == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				t.Fatalf("read %s: %v", f, err)
			}
			return n
		}
	}
	t.Fatalf("no peak memory file in the cgroup of %s", id)
	return 0
}

// TestVMAppNoHyper: mode nohyper runs the same app bundle as a plain
// container task, with the same exit status and output.
func TestVMAppNoHyper(t *testing.T) {
	app, data := appBundle(t, "echo MOOR-APP-OUT; echo nohyper > "+appMount+"/out; exit 7")
	v := newAppVM(t, app, 10*time.Second, map[string]any{"mode": string(devicemodel.ModeNoHyper)})
	spec, err := os.ReadFile(filepath.Join(v.Dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(spec), devicemodel.AnnotationRunDir) || strings.Contains(string(spec), "moor-anchor") {
		t.Fatalf("mode nohyper wrote a hypervisor task:\n%s", spec)
	}
	v.runToEnd(t, 7, 30*time.Second)
	if !strings.Contains(v.output(), "MOOR-APP-OUT") {
		t.Errorf("the task's output lacks the marker:\n%s", v.output())
	}
	if b, _ := os.ReadFile(filepath.Join(data, "out")); string(b) != "nohyper\n" {
		t.Errorf("the volume holds %q", b)
	}
	if _, err := os.Stat(v.RunDir); err == nil {
		t.Errorf("mode nohyper made a run directory")
	}
	checkAppLeftNothing(t, v, app.Spec.Root.Path, data)
}

// arm64GuestDir is where scripts/arm64-guest.sh (run by scripts/deps.sh)
// puts Debian's arm64 kernel, its modules and busybox.
const arm64GuestDir = "../bin/arm64-guest"

// guestInitArm64 builds moor-guest.arm64 beside moor once, when missing.
var guestInitArm64 struct {
	once sync.Once
	err  error
}

// TestVMAppArm64 boots an arm64 container app under TCG: qemu-system-aarch64
// with machine virt, Debian's arm64 kernel and the initramfs moor builds
// with moor-guest.arm64 and the kernel's own modules; the app's arm64
// busybox reports its machine and exits 5, which is the task's status.
func TestVMAppArm64(t *testing.T) {
	dir, err := filepath.Abs(arm64GuestDir)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := os.ReadFile(filepath.Join(dir, "release"))
	if err != nil {
		t.Fatalf("Debian's arm64 kernel is not in %s: scripts/arm64-guest.sh (run by scripts/deps.sh) fetches it with apt (it is not installed "+
			"with dpkg: an arm64 kernel package's postinst would add it to this host's /boot and boot loader): %v", arm64GuestDir, err)
	}
	if _, err := exec.LookPath("qemu-system-aarch64"); err != nil {
		t.Fatalf("qemu-system-aarch64 is not installed (apt-get install qemu-system-arm): %v", err)
	}
	guestInitArm64.once.Do(func() {
		p := filepath.Join(filepath.Dir(moorBin), "moor-guest.arm64")
		if _, err := os.Stat(p); err == nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", p, "../cmd/moor-guest")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
		if out, err := cmd.CombinedOutput(); err != nil {
			guestInitArm64.err = fmt.Errorf("build moor-guest.arm64: %w: %s", err, out)
		}
	})
	if guestInitArm64.err != nil {
		t.Fatal(guestInitArm64.err)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(filepath.Join(dir, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	release := strings.TrimSpace(string(rel))
	app, data := appBundleIn(t, root, "echo MOOR-ARM-$(busybox uname -m); echo arm64 > "+appMount+"/out; exit 5")
	v := newAppVM(t, app, 10*time.Second, map[string]any{"arch": "arm64", "kernel": filepath.Join(dir, "vmlinuz")},
		"--kernel-modules", filepath.Join(dir, "root", "lib", "modules", release))
	t0 := time.Now()
	v.runToEnd(t, 5, 90*time.Second)
	t.Logf("the arm64 app's VM ran under TCG and ended in %v", time.Since(t0))
	if !strings.Contains(v.output(), "MOOR-ARM-aarch64") {
		t.Errorf("the task's output lacks MOOR-ARM-aarch64:\n%s", v.output())
	}
	if b, _ := os.ReadFile(filepath.Join(data, "out")); string(b) != "arm64\n" {
		t.Errorf("the volume holds %q", b)
	}
	cfg, _ := os.ReadFile(filepath.Join(v.RunDir, "qemu.cfg"))
	if !strings.Contains(string(cfg), `type = "virt"`) {
		t.Errorf("qemu.cfg of the arm64 guest is not machine virt:\n%s", cfg)
	}
	checkAppLeftNothing(t, v, root, data)
}
