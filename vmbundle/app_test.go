package vmbundle

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/guest"
)

// guestInitFor puts this test binary (an ELF of the host's architecture)
// beside moor as name.
func guestInitFor(t *testing.T, moor, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(moor), name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeModules is a module directory with what the guest needs.
func fakeModules(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test")
	dep := "kernel/drivers/virtio/virtio_pci.ko:\nkernel/drivers/char/virtio_console.ko:\n" +
		"kernel/net/9p/9pnet.ko:\nkernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko\nkernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko\n" +
		"kernel/fs/overlayfs/overlay.ko:\n"
	writeFile(t, filepath.Join(dir, "modules.dep"), dep)
	for _, line := range strings.Split(strings.TrimSpace(dep), "\n") {
		mod, _, _ := strings.Cut(line, ":")
		writeFile(t, filepath.Join(dir, mod), "module "+mod)
	}
	return dir
}

// archiveNames lists a gzip'd cpio archive's members with GNU cpio.
func archiveNames(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("cpio cannot list the archive here: %v", err)
	}
	return string(out)
}

func TestWriteInitramfsCachedByContent(t *testing.T) {
	init := filepath.Join(t.TempDir(), GuestInitBinary)
	writeFile(t, init, "a guest init")
	runDir := t.TempDir()
	stale := filepath.Join(runDir, "initramfs-0000000000000000.cpio.gz")
	writeFile(t, stale, "old")
	cfg := guest.Config{Root: guest.Mount{Destination: "/", Type: guest.MountType9p, Source: "moor-root"},
		Process: guest.Process{Args: []string{"/bin/true"}}}
	p1, err := writeInitramfs(runDir, init, fakeModules(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("an earlier initramfs was left in the run directory")
	}
	p2, err := writeInitramfs(runDir, init, fakeModules(t), cfg)
	if err != nil || p2 != p1 {
		t.Fatalf("the same inputs gave %s, %v, then %s", p1, err, p2)
	}
	names := archiveNames(t, p1)
	for _, want := range []string{"init\n", "dev/console\n", "etc/moor/app.json\n", "lib/modules/6.1.0-test/kernel/fs/9p/9p.ko\n", "app\n"} {
		if !strings.Contains(names, want) {
			t.Errorf("the initramfs lacks %q:\n%s", want, names)
		}
	}
	cfg.Hostname = "other"
	p3, err := writeInitramfs(runDir, init, NoModules, cfg)
	if err != nil || p3 == p1 {
		t.Fatalf("other inputs gave the same file %s (%v)", p3, err)
	}
	if left, _ := filepath.Glob(filepath.Join(runDir, initramfsGlob)); len(left) != 1 {
		t.Errorf("the run directory holds %v, want one initramfs", left)
	}
	cfg.RootOverlay = true
	p4, err := writeInitramfs(runDir, init, fakeModules(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if names := archiveNames(t, p4); !strings.Contains(names, "kernel/fs/overlayfs/overlay.ko\n") {
		t.Errorf("an overlaid root's initramfs lacks overlay.ko:\n%s", names)
	}
	if _, err := writeInitramfs(runDir, init, "", cfg); err == nil || !strings.Contains(err.Error(), "--kernel-modules") {
		t.Errorf("no module directory: %v, want an error naming --kernel-modules", err)
	}
}

func TestFindGuestInit(t *testing.T) {
	host, foreign := devicemodel.HostArch(), devicemodel.ARM64
	if host == devicemodel.ARM64 {
		foreign = devicemodel.AMD64
	}
	moor := fakeMoor(t, false)
	if _, err := findGuestInit("", moor, host); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("no guest init: %v", err)
	}
	native := guestInitFor(t, moor, GuestInitBinary)
	if p, err := findGuestInit("", moor, host); err != nil || p != native {
		t.Errorf("findGuestInit = %q, %v, want %s", p, err, native)
	}
	if _, err := findGuestInit("", moor, foreign); err == nil || !strings.Contains(err.Error(), "GOARCH="+string(foreign)) {
		t.Errorf("a %s guest with a %s guest init: %v, want an error that says how to build one", foreign, host, err)
	}
	guestInitFor(t, moor, GuestInitBinary+"."+string(foreign)) // the wrong machine under the right name
	if _, err := findGuestInit("", moor, foreign); err == nil || !strings.Contains(err.Error(), "built for") {
		t.Errorf("a guest init of the wrong machine: %v", err)
	}
	if _, err := findGuestInit(filepath.Join(t.TempDir(), "missing"), moor, host); err == nil {
		t.Error("a named guest init that is missing was taken")
	}
}

func TestWriteContainer(t *testing.T) {
	app := t.TempDir()
	writeFile(t, filepath.Join(app, "rootfs", "bin", "sh"), "")
	s := &specs.Spec{Version: specs.Version, Root: &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{Args: []string{"/bin/sh"}, Cwd: "/"},
		Mounts: []specs.Mount{{Destination: "/data", Type: "bind", Source: "data", Options: []string{"rbind"}},
			{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux: &specs.Linux{}}
	b, _ := json.Marshal(s)
	writeFile(t, filepath.Join(app, SpecFile), string(b))
	out := t.TempDir()
	v := vm(t, `{"name":"c","mode":"nohyper","memoryMiB":64,"vcpus":2,"cpus":"0-1"}`)
	if err := Write(v, Options{Dir: out, Moor: fakeMoor(t, true), App: app, CgroupsPath: "/apps/c"}); err != nil {
		t.Fatal(err)
	}
	got := readSpec(t, out)
	r := got.Linux.Resources
	switch {
	case got.Root.Path != filepath.Join(app, "rootfs"):
		t.Errorf("root %s", got.Root.Path)
	case got.Mounts[0].Source != filepath.Join(app, "data") || got.Mounts[1].Source != "proc":
		t.Errorf("mounts %+v", got.Mounts)
	case *r.Memory.Limit != 64<<20 || *r.CPU.Quota != 200000 || *r.CPU.Period != 100000 || r.CPU.Cpus != "0-1":
		t.Errorf("resources %+v %+v", r.Memory, r.CPU)
	case got.Linux.CgroupsPath != "/apps/c" || got.Annotations[devicemodel.AnnotationRunDir] != "":
		t.Errorf("cgroups path %q, annotations %v", got.Linux.CgroupsPath, got.Annotations)
	}
	if err := Write(v, Options{Dir: out, Moor: fakeMoor(t, true), App: app}); err == nil {
		t.Error("an existing config.json was overwritten")
	}
	if _, err := os.Stat(filepath.Join(out, RunDir)); err == nil {
		t.Error("a nohyper app got a run directory")
	}
}
