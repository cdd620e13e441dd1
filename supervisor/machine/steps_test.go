package machine

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// TestEarlyMountsStep: every early mount in order, its mount point made;
// an EBUSY (mounted already) is fine, another failure is reported and the
// rest still mount; /dev's links are made once.
func TestEarlyMountsStep(t *testing.T) {
	m, fs, _ := newTestMachine(t, "")
	fs.fail["mount /run"] = unix.EBUSY
	fs.fail["mount /dev/mqueue"] = unix.ENODEV
	err := m.earlyMounts()
	if !errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EBUSY) {
		t.Errorf("error %v, want only the mqueue failure", err)
	}
	var targets []string
	for _, c := range fs.got() {
		targets = append(targets, strings.Fields(c)[2])
	}
	want := []string{"/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/run", "/tmp"}
	if !slices.Equal(targets, want) {
		t.Errorf("mounted %v, want %v", targets, want)
	}
	for _, mt := range want {
		if fi, err := os.Stat(filepath.Join(m.root, mt)); err != nil || !fi.IsDir() {
			t.Errorf("mount point %s not made: %v", mt, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(m.root, "dev/fd")); err != nil || l != "/proc/self/fd" {
		t.Errorf("/dev/fd links to %q (%v)", l, err)
	}
	if err := m.earlyMounts(); !errors.Is(err, unix.ENODEV) || strings.Contains(err.Error(), "link") {
		t.Errorf("a second run: %v, want the links left as they are", err)
	}
}

// TestSetupSteps: the steps run in their order, a failing step does not
// stop the others, and the log names it.
func TestSetupSteps(t *testing.T) {
	m, fs, log := newTestMachine(t, "")
	writeFiles(t, m.root, map[string]string{
		"proc/self/mountinfo": "1 1 0:2 / / rw - tmpfs tmpfs rw\n",
		"proc/filesystems":    procFilesystems, "proc/cgroups": procCgroups,
		"etc/hostname": "edge-1\n",
	})
	fs.fail["reboot"] = unix.EPERM
	m.setup()
	var kinds []string
	for _, c := range fs.got() {
		k := strings.Fields(c)[0]
		if k == "mount" && strings.Contains(c, "cgroup") {
			k = "cgroup"
		}
		if len(kinds) == 0 || kinds[len(kinds)-1] != k {
			kinds = append(kinds, k)
		}
	}
	want := []string{"mount", "console", "cgroup", "reboot", "hostname", "up"}
	if !slices.Equal(kinds, want) {
		t.Errorf("calls %v, want %v (all: %q)", kinds, want, fs.got())
	}
	if !slices.Contains(fs.got(), "hostname edge-1") || !slices.Contains(fs.got(), "reboot 0x0") {
		t.Errorf("want hostname edge-1 and Ctrl-Alt-Del off (reboot CAD_OFF): %q", fs.got())
	}
	if !strings.Contains(log.String(), "step=ctrl-alt-del") {
		t.Errorf("the failing step is not named in the log:\n%s", log)
	}
}

func TestHostnameDefault(t *testing.T) {
	m, fs, _ := newTestMachine(t, "")
	if err := m.hostname(); err != nil {
		t.Fatal(err)
	}
	if got := fs.got(); !slices.Equal(got, []string{"hostname " + DefaultHostname}) {
		t.Errorf("calls %q", got)
	}
}

func TestOnRootfs(t *testing.T) {
	parse := func(s string) []*mountinfo.Info {
		ms, err := mountinfo.GetMountsFromReader(strings.NewReader(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	initramfs := "1 1 0:2 / / rw - rootfs rootfs rw,size=1000k\n20 1 0:5 / /proc rw - proc proc rw\n"
	switched := initramfs + "25 1 0:26 / / rw - tmpfs tmpfs rw\n"
	if !OnRootfs(parse(initramfs)) {
		t.Error("the initramfs is not seen as rootfs")
	}
	if OnRootfs(parse(switched)) {
		t.Error("a tmpfs moved over the rootfs is seen as rootfs")
	}
}

// TestSwitchRootOffRootfs: on a root that is not the kernel's rootfs the
// step changes nothing.
func TestSwitchRootOffRootfs(t *testing.T) {
	m, fs, _ := newTestMachine(t, "")
	writeFiles(t, m.root, map[string]string{"proc/self/mountinfo": "1 1 0:2 / / rw - tmpfs tmpfs rw\n"})
	if err := m.switchRoot(); err != nil {
		t.Fatal(err)
	}
	if got := fs.got(); len(got) != 0 {
		t.Errorf("calls %q, want none", got)
	}
}

// TestCopyAndEmptyTree: the copy has the directories, files (mode and
// content) and links and leaves out the destination itself; emptying
// removes everything on the tree's device (here the destination too: it
// is no mount point).
func TestCopyAndEmptyTree(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"init": "moor", "containers/services/a/config.json": "{}"})
	if err := os.Chmod(filepath.Join(src, "init"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(src, "containers/sh")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(src, ".moor-root")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "containers/services/a/config.json")); err != nil || string(b) != "{}" {
		t.Errorf("copied file: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "init")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("copied init: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "containers/sh")); err != nil || l != "busybox" {
		t.Errorf("copied link: %q %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(dst, ".moor-root")); err == nil {
		t.Error("the destination was copied into itself")
	}
	if err := EmptyTree(src); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(src)
	if len(left) != 0 {
		t.Errorf("left after emptying: %v", left)
	}
}
