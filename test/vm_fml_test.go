package test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
)

// Debian's ovmf package: UEFI firmware split into its code and the
// template of its variable store.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS.fd"
)

// fmlGrace is short: a guest without an OS ignores the ACPI powerdown.
const fmlGrace = time.Second

// requireOVMF fails the test when the OVMF images are missing: CI
// installs them (scripts/deps.sh).
func requireOVMF(t *testing.T) {
	t.Helper()
	for _, f := range []string{ovmfCode, ovmfVars} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("OVMF is not installed (apt-get install ovmf): %v", err)
		}
	}
}

// fmlVM is a VM description that boots OVMF under TCG with the template
// vars.
func fmlVM(vars string) map[string]any {
	return map[string]any{"mode": "fml", "hypervisor": "tcg", "memoryMiB": 128, "vcpus": 1,
		"firmware": ovmfCode, "firmwareVars": vars}
}

// respec runs moor vm spec again for the task's bundle, whose config.json
// is removed first.
func (v *vmTask) respec(t *testing.T) result {
	t.Helper()
	if err := os.Remove(filepath.Join(v.Dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	return moor(t, "vm", "spec", "--vm", filepath.Join(v.Dir, "vm-description.json"), "--bundle", v.Dir,
		"--cgroups-path", vmCgroupParent+"/"+v.ID, "--host-root", "--grace", fmlGrace.String())
}

// TestVMFMLVars boots UEFI firmware with the VM's own variable store:
// moor vm spec copies the template into the run directory, qemu gets it
// as a second, writable pflash drive, and the firmware writes its
// variables into the copy, never into the template. The copy outlives the
// task: a new vm spec keeps what the firmware wrote and the VM's next run
// boots from it again.
func TestVMFMLVars(t *testing.T) {
	requireQemu(t)
	requireOVMF(t)
	template, err := os.ReadFile(ovmfVars)
	if err != nil {
		t.Fatal(err)
	}
	v := newVMTask(t, fmlVM(ovmfVars), "--host-root", "--grace", fmlGrace.String())
	vars := filepath.Join(v.RunDir, devicemodel.VarsFile)
	fi, err := os.Stat(vars)
	if err != nil {
		t.Fatalf("vm spec made no copy of the variable store: %v", err)
	}
	if got, _ := os.ReadFile(vars); !bytes.Equal(got, template) {
		t.Errorf("%s is not a copy of %s", vars, ovmfVars)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", vars, fi.Mode().Perm())
	}

	runFML(t, v, vars, template)
	written, err := os.ReadFile(vars)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.respec(t); r.Code != 0 {
		t.Fatalf("vm spec again: %v", r)
	}
	again, err := os.Stat(vars)
	if err != nil || !os.SameFile(fi, again) {
		t.Fatalf("vm spec again replaced the VM's variable store (%v)", err)
	}
	if got, _ := os.ReadFile(vars); !bytes.Equal(got, written) {
		t.Fatalf("vm spec again changed the VM's variable store")
	}
	runFML(t, v, vars, template)

	if got, _ := os.ReadFile(ovmfVars); !bytes.Equal(got, template) {
		t.Errorf("the template %s changed", ovmfVars)
	}
}

// runFML starts the task, checks that qemu runs the guest on the two
// pflash drives, holds vars open for writing and that the firmware has
// written its variables there, then stops and deletes the task.
func runFML(t *testing.T, v *vmTask, vars string, template []byte) {
	t.Helper()
	v.start(t)
	st := v.waitRunState(t, 20*time.Second, "guest running", func(s *devicemodel.RunState) bool { return s.State != devicemodel.GuestStarting })
	if st.State != devicemodel.GuestRunning {
		t.Fatalf("run state %+v, want running", st)
	}
	qemuPID := qemuChild(t, v.PID)
	checkPflash(t, v, qemuPID)
	if !holdsForWriting(t, qemuPID, vars) {
		t.Errorf("qemu %d does not hold the VM's variable store %s open for writing", qemuPID, vars)
	}
	waitFor(t, 20*time.Second, "the firmware to write its variables", func() bool {
		b, _ := os.ReadFile(vars)
		return len(b) == len(template) && !bytes.Equal(b, template)
	})
	signalPID(t, v.PID, unix.SIGTERM)
	v.waitExit(t, fmlGrace+15*time.Second)
	v.deleteAndCheck(t)
	if _, err := os.Stat(vars); err != nil {
		t.Errorf("delete removed the VM's variable store: %v", err)
	}
}

// qemuChild is the anchor's qemu child.
func qemuChild(t *testing.T, anchor int) int {
	t.Helper()
	kids := procChildren(anchor)
	i := slices.IndexFunc(kids, func(pid int) bool { return strings.HasPrefix(procComm(pid), "qemu-system") })
	if i < 0 {
		t.Fatalf("no qemu among the anchor's children %v", kids)
	}
	return kids[i]
}

// checkPflash reads the drives of qemu's -readconfig file (in the run
// directory) and wants the read-only code and then the writable vars.
func checkPflash(t *testing.T, v *vmTask, qemuPID int) {
	t.Helper()
	args := procCmdline(qemuPID)
	cfg := ""
	for i, a := range args[:len(args)-1] {
		if a == "-readconfig" {
			cfg = args[i+1]
		}
	}
	if cfg != filepath.Join(devicemodel.TaskRunDir, "qemu.cfg") {
		t.Fatalf("qemu runs with -readconfig %q: %q", cfg, args)
	}
	b, err := os.ReadFile(filepath.Join(v.RunDir, "qemu.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	var pflash []string
	for _, sec := range strings.Split(string(b), "\n\n") {
		if strings.HasPrefix(sec, "[drive ") && strings.Contains(sec, `if = "pflash"`) {
			pflash = append(pflash, sec)
		}
	}
	want := []string{
		strings.Join([]string{`[drive "drive-ovmf-code"]`, `  if = "pflash"`, `  format = "raw"`, `  readonly = "on"`,
			`  file = "/run/moor/boot/firmware"`}, "\n"),
		strings.Join([]string{`[drive "drive-ovmf-vars"]`, `  if = "pflash"`, `  format = "raw"`,
			`  file = "` + filepath.Join(devicemodel.TaskRunDir, devicemodel.VarsFile) + `"`}, "\n"),
	}
	if !slices.Equal(pflash, want) {
		t.Errorf("pflash drives of qemu.cfg:\n%s\nwant:\n%s", strings.Join(pflash, "\n\n"), strings.Join(want, "\n\n"))
	}
}

// holdsForWriting reports whether pid has file open read-write.
func holdsForWriting(t *testing.T, pid int, file string) bool {
	t.Helper()
	want, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		fi, err := os.Stat(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil || !os.SameFile(fi, want) {
			continue
		}
		info, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		for _, line := range strings.Split(string(info), "\n") {
			if f, ok := strings.CutPrefix(line, "flags:"); ok {
				flags, _ := strconv.ParseInt(strings.TrimSpace(f), 8, 64)
				if flags&unix.O_ACCMODE == unix.O_RDWR {
					return true
				}
			}
		}
	}
	return false
}

// TestVMFMLVarsTemplateMissing: vm spec names the template it cannot read,
// and leaves neither a config.json nor a copy behind.
func TestVMFMLVarsTemplateMissing(t *testing.T) {
	requireOVMF(t)
	dir := filepath.Join(scratch, taskID(t))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	template := copyFile(t, ovmfVars, dir)
	v := newVMTask(t, fmlVM(template), "--host-root")
	vars := filepath.Join(v.RunDir, devicemodel.VarsFile)
	for _, f := range []string{template, vars} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	r := v.respec(t)
	if r.Code == 0 || !strings.Contains(r.Stderr, "firmwareVars") || !strings.Contains(r.Stderr, template) {
		t.Errorf("vm spec with the template gone: %v, want an error naming firmwareVars and %s", r, template)
	}
	for _, f := range []string{filepath.Join(v.Dir, "config.json"), vars} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("vm spec failed but wrote %s", f)
		}
	}
	left, _ := filepath.Glob(filepath.Join(v.RunDir, "."+devicemodel.VarsFile+"*"))
	if len(left) > 0 {
		t.Errorf("vm spec left temporary files: %v", left)
	}
}
