package initramfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lf-edge/moor/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// sample is an archive with one entry of each kind, parents made on the way.
func sample(t *testing.T) *Archive {
	t.Helper()
	a := New()
	for _, err := range []error{
		a.File("/init", 0o755, []byte("#!/bin/sh\necho hi\n")),
		a.Dir("/proc", 0o555),
		a.Symlink("/bin/sh", "busybox"),
		a.Device("/dev/console", 0o600, CharDevice, 5, 1),
		a.Device("/dev/vda", 0o660, BlockDevice, 254, 0),
		a.File("/etc/moor/app.json", 0o644, []byte(`{"args":["/bin/true"]}`)),
		a.Dir("/etc", 0o755), // again, the same: fine
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func TestGoldenCPIO(t *testing.T) {
	var b bytes.Buffer
	if err := sample(t).WriteCPIO(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "sample.cpio", b.Bytes(), *update)
	want := []string{"init", "proc", "bin", "bin/sh", "dev", "dev/console", "dev/vda", "etc", "etc/moor", "etc/moor/app.json"}
	if got := sample(t).Names(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("names %v, want %v", got, want)
	}
}

// TestDeterministic: the same inputs, the same gzip'd bytes.
func TestDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := sample(t).Write(&a); err != nil {
		t.Fatal(err)
	}
	if err := sample(t).Write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of the same archive differ")
	}
	zr, err := gzip.NewReader(&a)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	var plain bytes.Buffer
	_ = sample(t).WriteCPIO(&plain)
	if !bytes.Equal(raw, plain.Bytes()) {
		t.Fatal("the gzip'd archive is not the cpio archive")
	}
}

// TestCPIOReads lets GNU cpio list and extract the archive, when it is
// installed.
func TestCPIOReads(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio is not installed: the golden file still checks the format")
	}
	var b bytes.Buffer
	if err := sample(t).WriteCPIO(&b); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-t", "-v", "--quiet")
	cmd.Stdin = bytes.NewReader(b.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	for _, want := range []string{"-rwxr-xr-x", "init", "lrwxrwxrwx", "bin/sh -> busybox", "crw-------", "5,", "brw-rw----", "254,", "etc/moor/app.json", "dr-xr-xr-x"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio -t -v lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	cmd = exec.Command("cpio", "-i", "-d", "--quiet", "--no-absolute-filenames", "init", "etc/moor/app.json", "bin/sh")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(b.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "etc/moor/app.json")); string(got) != `{"args":["/bin/true"]}` {
		t.Errorf("extracted app.json %q", got)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "bin/sh")); target != "busybox" {
		t.Errorf("extracted symlink points to %q", target)
	}
}

func TestBadPaths(t *testing.T) {
	a := New()
	for _, p := range []string{"", "/", ".", "..", "/a/../b", "a//b", "/x/"} {
		if err := a.File(p, 0o644, nil); !errors.Is(err, ErrBadPath) {
			t.Errorf("File(%q) = %v, want ErrBadPath", p, err)
		}
	}
	if err := a.File("/f", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.File("/f", 0o644, nil); !errors.Is(err, ErrExists) {
		t.Errorf("second File(/f) = %v, want ErrExists", err)
	}
	if err := a.File("/f/g", 0o644, nil); !errors.Is(err, ErrBadPath) {
		t.Errorf("File under a file = %v, want ErrBadPath", err)
	}
	if err := a.Dir("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := a.Dir("/d", 0o700); !errors.Is(err, ErrExists) {
		t.Errorf("Dir(/d) with another mode = %v, want ErrExists", err)
	}
	if err := a.Symlink("/l", ""); !errors.Is(err, ErrBadPath) {
		t.Errorf("Symlink without a target = %v, want ErrBadPath", err)
	}
}

func TestBzImageRelease(t *testing.T) {
	img := make([]byte, 0x400)
	copy(img[0x202:], "HdrS")
	img[0x20e] = 0x00
	img[0x20f] = 0x01 // the version at 0x300
	copy(img[0x300:], "6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP\x00")
	rel, err := BzImageRelease(bytes.NewReader(img))
	if err != nil || rel != "6.1.0-57-amd64" {
		t.Fatalf("BzImageRelease = %q, %v", rel, err)
	}
	if _, err := BzImageRelease(bytes.NewReader(make([]byte, 0x400))); !errors.Is(err, ErrNoRelease) {
		t.Errorf("no magic: %v, want ErrNoRelease", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "vmlinuz-6.1.0-57-arm64")
	if err := os.WriteFile(p, []byte("not a bzImage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rel, err := KernelRelease(p); err != nil || rel != "6.1.0-57-arm64" {
		t.Errorf("KernelRelease by name = %q, %v", rel, err)
	}
	if _, err := KernelRelease(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing kernel: %v", err)
	}
}
