package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
)

// fakeXL is a loader bundle whose root holds nothing but a static fake xl
// (test/testdata/vm/fakexl), and the directory where it keeps its domains.
type fakeXL struct {
	Loader string
	Dir    string // bind-mounted at /run/fakexl in the task
}

func newFakeXL(t *testing.T) *fakeXL {
	t.Helper()
	base := filepath.Join(scratch, taskID(t)+"-xl")
	t.Cleanup(func() { os.RemoveAll(base) })
	f := &fakeXL{Loader: filepath.Join(base, "loader"), Dir: filepath.Join(base, "domains")}
	for _, d := range []string{filepath.Join(f.Loader, "rootfs", "usr", "sbin"), f.Dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(f.Loader, "rootfs", "usr", "sbin", "xl"), "./testdata/vm/fakexl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fake xl: %v\n%s", err, out)
	}
	loader := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Mounts:  []specs.Mount{{Destination: "/run/fakexl", Type: "bind", Source: f.Dir, Options: []string{"rbind", "rw"}}},
	}
	b, _ := json.Marshal(loader)
	if err := os.WriteFile(filepath.Join(f.Loader, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// task makes a Xen task on the fake xl; the poststop hook finds the fake's
// domains through FAKE_XL_DIR.
func (f *fakeXL) task(t *testing.T, grace time.Duration) *vmTask {
	t.Helper()
	v := newVMTask(t, map[string]any{"hypervisor": "xen", "memoryMiB": 64, "vcpus": 1},
		"--loader", f.Loader, "--device-model", "/usr/sbin/xl", "--grace", grace.String())
	s := readSpec(t, v.Dir)
	if s.Annotations[devicemodel.AnnotationXL] == "" || len(s.Hooks.Poststop) != 1 {
		t.Fatalf("xen spec lacks the xl annotation or the poststop hook: %v %+v", s.Annotations, s.Hooks)
	}
	s.Hooks.Poststop[0].Env = []string{"FAKE_XL_DIR=" + f.Dir}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(v.Dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fakeXL) calls() string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "calls"))
	return string(b)
}

func (f *fakeXL) domain(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(f.Dir, name+".state"))
	return string(b), err == nil
}

func (f *fakeXL) waitCall(t *testing.T, call string) {
	t.Helper()
	waitFor(t, 10*time.Second, "xl "+call, func() bool { return strings.Contains(f.calls(), call+"\n") })
}

func waitEnd(t *testing.T, v *vmTask, want devicemodel.End) {
	t.Helper()
	v.waitExit(t, 20*time.Second)
	if st := v.runState(t); st == nil || st.End != want {
		t.Fatalf("run state %+v, want end %s", st, want)
	}
}

// TestVMFakeXL drives Xen tasks through a fake xl in a loader root without
// libc: create -p and unpause at start, pause and unpause on SIGUSR1/2,
// shutdown on SIGTERM, destroy after the grace period, a guest that powers
// itself off, and a SIGKILLed anchor whose domain delete destroys.
func TestVMFakeXL(t *testing.T) {
	f := newFakeXL(t)
	running := func(v *vmTask) {
		v.waitRunState(t, 10*time.Second, "domain running", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestRunning })
	}

	t.Run("lifecycle", func(t *testing.T) {
		v := f.task(t, 5*time.Second)
		v.start(t)
		running(v)
		f.waitCall(t, "create -p "+devicemodel.TaskRunDir+"/xl.cfg")
		f.waitCall(t, "unpause "+v.ID)
		signalPID(t, v.PID, unix.SIGUSR1)
		v.waitRunState(t, 10*time.Second, "domain paused", func(s *devicemodel.RunState) bool { return s.State == devicemodel.GuestPaused })
		f.waitCall(t, "pause "+v.ID)
		signalPID(t, v.PID, unix.SIGUSR2)
		running(v)
		signalPID(t, v.PID, unix.SIGTERM)
		f.waitCall(t, "shutdown -F "+v.ID)
		waitEnd(t, v, devicemodel.EndPoweroff)
		v.deleteAndCheck(t)
	})

	t.Run("ignores-acpi", func(t *testing.T) {
		v := f.task(t, 2*time.Second)
		if err := os.WriteFile(filepath.Join(f.Dir, v.ID+".ignore-acpi"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		v.start(t)
		running(v)
		signalPID(t, v.PID, unix.SIGTERM)
		waitEnd(t, v, devicemodel.EndForced)
		if !strings.Contains(f.calls(), "destroy "+v.ID+"\n") {
			t.Errorf("no xl destroy after the grace period; calls:\n%s", f.calls())
		}
		v.deleteAndCheck(t)
	})

	t.Run("guest-poweroff", func(t *testing.T) {
		v := f.task(t, 5*time.Second)
		v.start(t)
		running(v)
		if err := os.Remove(filepath.Join(f.Dir, v.ID+".state")); err != nil { // the guest powers off
			t.Fatal(err)
		}
		waitEnd(t, v, devicemodel.EndPoweroff)
		v.deleteAndCheck(t)
	})

	t.Run("sigkill-anchor", func(t *testing.T) {
		v := f.task(t, 5*time.Second)
		v.start(t)
		running(v)
		signalPID(t, v.PID, unix.SIGKILL)
		v.waitExit(t, 10*time.Second)
		if _, ok := f.domain(v.ID); !ok {
			t.Fatal("the domain went with its anchor; the test needs it to outlive the anchor")
		}
		v.deleteAndCheck(t)
		if st, ok := f.domain(v.ID); ok {
			t.Fatalf("delete left the domain of a SIGKILLed anchor (state %s); calls:\n%s", st, f.calls())
		}
	})
}
