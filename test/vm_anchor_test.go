package test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
)

// leanAnchor is the moor-anchor beside the moor under test, which moor vm
// spec makes a hypervisor task's process.
func leanAnchor() string { return filepath.Join(filepath.Dir(moorBin), anchorBinary) }

// checkAnchor fails unless the process runs binary (a host path) with arg
// after its name: "--dir" for moor-anchor, "anchor" for moor's verb.
func checkAnchor(t *testing.T, pid int, binary, arg string) {
	t.Helper()
	want, err := os.Stat(binary)
	if err != nil {
		t.Fatal(err)
	}
	// start returns once the task's init has been let go; its execve of
	// the task's process follows at once, so wait for it to be done.
	waitFor(t, 10*time.Second, fmt.Sprintf("task pid %d to run %s", pid, binary), func() bool {
		exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
		return err == nil && os.SameFile(exe, want)
	})
	if args := procCmdline(pid); args[1] != arg {
		t.Errorf("task pid %d runs %q, want %q after the binary", pid, args, arg)
	}
}

// copyFile copies an executable into dir and returns the copy's path.
func copyFile(t *testing.T, src, dir string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func readSpec(t *testing.T, bundle string) *specs.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// anchorMount is the host file the spec bind-mounts as its process.
func anchorMount(t *testing.T, s *specs.Spec) string {
	t.Helper()
	for _, m := range s.Mounts {
		if m.Destination == s.Process.Args[0] {
			return m.Source
		}
	}
	t.Fatalf("the spec mounts nothing at its process %s", s.Process.Args[0])
	return ""
}

// TestVMAnchorFallback runs a hypervisor task whose moor has no
// moor-anchor beside it: moor itself is the anchor, as "moor anchor", and
// runs qemu, pauses, resumes and stops the guest as the lean one does.
func TestVMAnchorFallback(t *testing.T) {
	requireQemu(t)
	alone := filepath.Join(scratch, taskID(t)+"-moor")
	if err := os.MkdirAll(alone, 0o755); err != nil {
		t.Fatal(err)
	}
	moorAlone := copyFile(t, moorBin, alone)
	const grace = time.Second
	v := newVMTaskBy(t, moorAlone, map[string]any{"hypervisor": "tcg", "memoryMiB": 64, "vcpus": 1},
		"--host-root", "--grace", grace.String())
	// Deleted after the task: its poststop hook is this moor.
	t.Cleanup(func() { os.RemoveAll(alone) })
	s := readSpec(t, v.Dir)
	if got := anchorMount(t, s); got != moorAlone || s.Process.Args[1] != "anchor" {
		t.Fatalf("spec process %q from %s, want moor anchor from %s", s.Process.Args, got, moorAlone)
	}
	v.start(t)
	checkAnchor(t, v.PID, moorAlone, "anchor")
	v.waitRunState(t, 30*time.Second, "guest running", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestRunning })
	signalPID(t, v.PID, unix.SIGUSR1)
	v.waitRunState(t, 10*time.Second, "guest paused", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestPaused })
	signalPID(t, v.PID, unix.SIGUSR2)
	v.waitRunState(t, 10*time.Second, "guest running again", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestRunning })
	signalPID(t, v.PID, unix.SIGTERM) // no OS to heed ACPI: stopped hard after the grace
	v.waitExit(t, grace+15*time.Second)
	if st := v.runState(t); st == nil || st.End != devicemodel.EndForced {
		t.Fatalf("run state %+v, want end forced", st)
	}
	v.deleteAndCheck(t)
}

// TestVMSpecAnchorFlag: --anchor names the lean anchor; one that does not
// exist is an error, not a silent fallback.
func TestVMSpecAnchorFlag(t *testing.T) {
	other := copyFile(t, leanAnchor(), t.TempDir())
	v := newVMTask(t, map[string]any{"hypervisor": "tcg", "memoryMiB": 64}, "--host-root", "--anchor", other)
	s := readSpec(t, v.Dir)
	if got := anchorMount(t, s); got != other || s.Process.Args[1] != "--dir" {
		t.Fatalf("spec process %q from %s, want moor-anchor from %s", s.Process.Args, got, other)
	}
	missing := filepath.Join(t.TempDir(), "no-anchor")
	desc := filepath.Join(v.Dir, "vm-description.json")
	r := moor(t, "vm", "spec", "--vm", desc, "--host-root", "--bundle", t.TempDir(), "--anchor", missing)
	if r.Code == 0 || !strings.Contains(r.Stderr, "no-anchor") {
		t.Fatalf("vm spec --anchor %s: %v, want an error naming it", missing, r)
	}
}

// TestVMTapInBridge gives a guest a NIC: qemu makes its tap on the host
// and the anchor puts it into the bridge the description names and brings
// it up. The tap goes with qemu.
func TestVMTapInBridge(t *testing.T) {
	requireQemu(t)
	const bridge, tap = "mbrt0", "mtapt0"
	ip(t, "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() {
		ip(t, "link", "del", bridge)
		if exec.Command("ip", "link", "show", tap).Run() == nil {
			t.Errorf("tap %s left on the host", tap)
			_ = exec.Command("ip", "link", "del", tap).Run()
		}
	})
	v := newVMTask(t, map[string]any{"hypervisor": "tcg", "memoryMiB": 64,
		"nics": []map[string]any{{"tap": tap, "bridge": bridge}}}, "--host-root", "--grace", "1s")
	v.start(t)
	v.waitRunState(t, 30*time.Second, "guest running", func(s *devicemodel.RunState) bool { return s.State != devicemodel.GuestStarting })
	link := ip(t, "-o", "link", "show", tap)
	_, flags, _ := strings.Cut(link, "<")
	flags, _, _ = strings.Cut(flags, ">")
	if !strings.Contains(link, "master "+bridge) || !slices.Contains(strings.Split(flags, ","), "UP") {
		t.Errorf("tap after start: %s; want it up in bridge %s", link, bridge)
	}
	signalPID(t, v.PID, unix.SIGTERM)
	v.waitExit(t, 20*time.Second)
	v.deleteAndCheck(t)
}
