package test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Real app images, run as container tasks and as container apps inside
// VMs: a Debian root as mmdebstrap makes it (usr-merged, dynamically
// linked python3) and a FROM-scratch root that holds one static binary
// and nothing else (no /dev, /proc, /sys, /etc).

// imagesDir caches the images made at test time, in the repository's
// bin/ (made again only when missing).
const imagesDir = "../bin/images"

// debianImage is the Debian root's cache, made once per run when missing.
var debianImage struct {
	once sync.Once
	root string
	err  error
}

// debianPythonRoot is a Debian bookworm root with python3, made by
// `mmdebstrap --variant=minbase --include=python3-minimal bookworm` into
// bin/images/debian-python the first time (it needs Debian's mirror).
func debianPythonRoot(t *testing.T) string {
	t.Helper()
	debianImage.once.Do(func() { debianImage.root, debianImage.err = makeDebianPythonRoot() })
	if debianImage.err != nil {
		t.Fatalf("make the Debian image: %v", debianImage.err)
	}
	return debianImage.root
}

func makeDebianPythonRoot() (string, error) {
	dir, err := filepath.Abs(imagesDir)
	if err != nil {
		return "", err
	}
	root := filepath.Join(dir, "debian-python")
	if _, err := os.Stat(filepath.Join(root, "usr", "bin", "python3")); err == nil {
		return root, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", fmt.Errorf("mmdebstrap is not installed (scripts/deps.sh installs it): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".debian-python-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	tar := filepath.Join(tmp, "rootfs.tar")
	for _, args := range [][]string{
		{"mmdebstrap", "--quiet", "--variant=minbase", "--include=python3-minimal", "bookworm", tar},
		{"tar", "-C", filepath.Join(tmp, "rootfs"), "--numeric-owner", "-xf", tar},
	} {
		if args[0] == "tar" {
			if err := os.Mkdir(args[2], 0o755); err != nil {
				return "", err
			}
		}
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	_ = os.RemoveAll(root) // a root left incomplete by an interrupted run
	if err := os.Rename(filepath.Join(tmp, "rootfs"), root); err != nil {
		return "", err
	}
	return root, nil
}

// scratchRoot is a root built as FROM scratch: /busybox, the static
// busybox of busybox-static, and nothing else.
func scratchRoot(t *testing.T) string {
	t.Helper()
	src, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static is not installed: %v", err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// checkTreeSame fails the test unless root is as before (its
// treeDigest) lists it.
func checkTreeSame(t *testing.T, root, before, what string) {
	t.Helper()
	if after := treeDigest(t, root); after != before {
		t.Errorf("%s modified the read-only root %s on the host:\nbefore:\n%s\nafter:\n%s", what, root, head(before), head(after))
	}
}

// head is the first lines of a long listing.
func head(s string) string {
	lines := strings.SplitN(s, "\n", 21)
	if len(lines) > 20 {
		lines[20] = "…"
	}
	return strings.Join(lines, "\n")
}

// runContainer runs the bundle as a container task with moor run and
// returns what it did.
func runContainer(t *testing.T, b *bundle) result {
	t.Helper()
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	return moor(t, "run", "--bundle", b.Dir, b.ID)
}

// checkVolume fails the test unless the app left want in the volume's
// file out.
func checkVolume(t *testing.T, data, want, what string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(data, "out")); err != nil || string(b) != want {
		t.Errorf("%s left %q, %v in its volume, want %q", what, b, err, want)
	}
}

// pythonApp prints its marker with python3's version and the machine,
// writes its volume and exits 42.
const pythonApp = "import os, sys; print('MOOR-PY', sys.version.split()[0], os.uname().machine); " +
	"open('/mnt/out', 'w').write('python\\n'); sys.exit(42)"

// TestImageDebianPython runs python3 of a Debian root as mmdebstrap makes
// it (usr-merged symlinks, a dynamically linked interpreter) inside a VM
// over 9p and as a container task: the same output, the same exit status
// 42, the same write to a volume, and the host's root left as it was.
func TestImageDebianPython(t *testing.T) {
	root := debianPythonRoot(t)
	if fi, err := os.Lstat(filepath.Join(root, "bin")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the Debian root's /bin is not usr-merged (a symlink): %v, %v", fi, err)
	}
	before := treeDigest(t, root)

	vmApp, vmData := imageBundle(t, root, "/mnt", "python3", "-c", pythonApp)
	v := newAppVM(t, vmApp, 10*time.Second, nil)
	t0 := time.Now()
	v.runToEnd(t, 42, 120*time.Second)
	t.Logf("python3 of the Debian root ran inside a VM and ended in %v", time.Since(t0))
	if !strings.Contains(v.output(), "MOOR-PY 3.") || !strings.Contains(v.output(), "x86_64") {
		t.Errorf("the VM app's output lacks python3's marker:\n%s", v.output())
	}
	checkVolume(t, vmData, "python\n", "the VM app")
	checkTreeSame(t, root, before, "the VM app")
	checkAppLeftNothing(t, v, root, vmData)

	app, data := imageBundle(t, root, "/mnt", "python3", "-c", pythonApp)
	r := runContainer(t, app)
	if r.Code != 42 || !strings.Contains(r.Stdout, "MOOR-PY 3.") {
		t.Errorf("python3 as a container task: %v, want exit 42 and its marker", r)
	}
	checkVolume(t, data, "python\n", "the container task")
	checkTreeSame(t, root, before, "the container task")
}

// scratchApp checks it has /dev, /proc and /sys, writes its volume at
// /data (which the root lacks) and exits 9.
const scratchApp = "/busybox test -c /dev/null && /busybox test -r /proc/self/stat && /busybox test -d /sys/kernel || exit 1; " +
	"echo MOOR-SCRATCH-$(/busybox cat /proc/sys/kernel/ostype); echo scratch > /data/out; " +
	"if /busybox touch /moor-root-write 2>/dev/null; then echo ROOT-WRITABLE; exit 2; fi; exit 9"

// TestImageScratch runs a root built FROM scratch, one static binary and
// nothing else (no /dev, /proc, /sys, /etc), with a volume whose
// destination the root lacks, as a container task and inside a VM: the
// app sees its kernel file systems and its volume, cannot write its root,
// and exits 9 both ways. Inside the VM the guest makes the mount points
// in a tmpfs overlay: the host's root is left exactly as it was.
func TestImageScratch(t *testing.T) {
	vmRoot := scratchRoot(t)
	before := treeDigest(t, vmRoot)
	vmApp, vmData := imageBundle(t, vmRoot, "/data", "/busybox", "sh", "-c", scratchApp)
	v := newAppVM(t, vmApp, 10*time.Second, nil)
	v.runToEnd(t, 9, 90*time.Second)
	if !strings.Contains(v.output(), "MOOR-SCRATCH-Linux") || strings.Contains(v.output(), "ROOT-WRITABLE") {
		t.Errorf("the VM app's output lacks its marker or its root was writable:\n%s", v.output())
	}
	checkVolume(t, vmData, "scratch\n", "the VM app")
	checkTreeSame(t, vmRoot, before, "the VM app")
	checkAppLeftNothing(t, v, vmRoot, vmData)

	// The container task gets a root of its own: libcontainer makes the
	// mount points in the host's directory, as runc does.
	app, data := imageBundle(t, scratchRoot(t), "/data", "/busybox", "sh", "-c", scratchApp)
	r := runContainer(t, app)
	if r.Code != 9 || !strings.Contains(r.Stdout, "MOOR-SCRATCH-Linux") || strings.Contains(r.Stdout, "ROOT-WRITABLE") {
		t.Errorf("the scratch root as a container task: %v, want exit 9 and its marker", r)
	}
	checkVolume(t, data, "scratch\n", "the container task")
}
