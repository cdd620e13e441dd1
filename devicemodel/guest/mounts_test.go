package guest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// /dev, /proc and /sys are mounted, one mounted already (EBUSY) being
// fine and any other failure not.
func TestEarlyMounts(t *testing.T) {
	g, k := newGuest(t, "")
	k.fail["/dev"] = unix.EBUSY
	if err := g.earlyMounts(); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("devtmpfs", "/dev", "devtmpfs", 0xa, "")`,
		`mount("proc", "/proc", "proc", 0xa, "")`,
		`mount("sysfs", "/sys", "sysfs", 0xa, "")`)
	k.fail["/proc"] = unix.EPERM
	if err := g.earlyMounts(); !errors.Is(err, unix.EPERM) {
		t.Errorf("a failed mount of /proc: %v", err)
	}
}

// Modules load in order; one loaded already is fine.
func TestLoadModules(t *testing.T) {
	g, k := newGuest(t, "")
	for _, m := range []string{"9p.ko", "virtio_console.ko"} {
		write(t, filepath.Join(g.root, "lib/modules", m), "", 0o644)
	}
	k.fail["9p.ko"] = unix.EEXIST
	if err := g.loadModules([]string{"/lib/modules/9p.ko", "/lib/modules/virtio_console.ko"}); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k, "finit_module(9p.ko)", "finit_module(virtio_console.ko)")
	k.fail["virtio_console.ko"] = unix.ENOEXEC
	if err := g.loadModules([]string{"/lib/modules/virtio_console.ko"}); !errors.Is(err, unix.ENOEXEC) {
		t.Errorf("a module that fails: %v", err)
	}
	if err := g.loadModules([]string{"/lib/modules/missing.ko"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing module: %v", err)
	}
}

const ninep = "trans=virtio,version=9p2000.L,msize=262144"

// mountApp mounts the app's root and its mounts below it: a kernel file
// system that fails is left out, a share or bind that fails is an error.
func TestMountAppWritableRoot(t *testing.T) {
	g, k := newGuest(t, "")
	k.fail["/app/sys/fs/cgroup"] = unix.ENODEV
	cfg := &Config{Root: Mount{Type: MountType9p, Source: "moor-root"}, Mounts: []Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec"}},
		{Destination: "/dev", Type: MountTypeBind, Source: "/dev", Options: []string{"rbind", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup"},
		{Destination: "/data", Type: MountType9p, Source: "moor-vol0", Options: []string{"sync"}},
	}}
	if err := g.mountApp(cfg); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("moor-root", "/app", "9p", 0x0, "`+ninep+`")`,
		`mount("proc", "/app/proc", "proc", 0xa, "")`,
		`mount("/dev", "/app/dev", "", 0x5000, "")`,
		`mount("", "/app/dev", "", 0x5021, "")`,
		`mount("cgroup", "/app/sys/fs/cgroup", "cgroup2", 0x0, "")`,
		`mount("moor-vol0", "/app/data", "9p", 0x10, "`+ninep+`")`)
	if !isDir(filepath.Join(g.root, "app/data")) {
		t.Error("the guest made no mount point for /data in the writable root")
	}
	k.fail["/app/data"] = unix.ENOENT
	if err := g.mountApp(cfg); !errors.Is(err, errMount) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("a share that fails: %v", err)
	}
	k.fail["/app/dev"] = unix.EPERM
	if err := g.mountApp(cfg); !errors.Is(err, errMount) {
		t.Errorf("a bind that fails: %v", err)
	}
}

// A root the app writes is the lower layer of an overlay on a tmpfs.
func TestMountAppRootOverlay(t *testing.T) {
	g, k := newGuest(t, "")
	cfg := &Config{Root: Mount{Type: MountType9p, Source: "moor-root"}, RootOverlay: true,
		Mounts: []Mount{{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"}}}
	if err := g.mountApp(cfg); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("moor-root", "/lower", "9p", 0x1, "`+ninep+`")`,
		`mount("tmpfs", "/rw", "tmpfs", 0x0, "mode=755")`,
		`mount("overlay", "/app", "overlay", 0x0, "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work")`,
		`mount("tmpfs", "/app/tmp", "tmpfs", 0x0, "")`)
	for _, d := range []string{"rw/upper", "rw/work"} {
		if !isDir(filepath.Join(g.root, d)) {
			t.Errorf("no overlay %s", d)
		}
	}
	k.fail["/rw"] = unix.ENOMEM
	if err := g.mountApp(cfg); !errors.Is(err, errMount) {
		t.Errorf("an overlay whose tmpfs fails: %v", err)
	}
}

// A read-only root that lacks a mount point is moved below an overlay
// whose tmpfs holds it, and made read-only again once the mounts are
// made; one that has them all is mounted as it is.
func TestMountAppReadOnlyRoot(t *testing.T) {
	g, k := newGuest(t, "")
	mkdirs(t, g.root, "app/proc") // the share's content, as mounted
	cfg := &Config{Root: Mount{Type: MountType9p, Source: "moor-root", Options: []string{"ro"}}, Mounts: []Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/data", Type: MountType9p, Source: "moor-vol0"},
	}}
	if err := g.mountApp(cfg); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("moor-root", "/app", "9p", 0x1, "`+ninep+`")`,
		`mount("/app", "/lower", "", 0x2000, "")`,
		`mount("tmpfs", "/rw", "tmpfs", 0x0, "mode=755")`,
		`mount("overlay", "/app", "overlay", 0x0, "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work")`,
		`mount("proc", "/app/proc", "proc", 0x0, "")`,
		`mount("moor-vol0", "/app/data", "9p", 0x0, "`+ninep+`")`,
		`mount("", "/app", "", 0x1021, "")`)

	g, k = newGuest(t, "")
	mkdirs(t, g.root, "app/proc", "app/data")
	if err := g.mountApp(cfg); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("moor-root", "/app", "9p", 0x1, "`+ninep+`")`,
		`mount("proc", "/app/proc", "proc", 0x0, "")`,
		`mount("moor-vol0", "/app/data", "9p", 0x0, "`+ninep+`")`)

	k.fail["/lower"] = unix.EINVAL
	mkdirs(t, g.root, "app/proc")
	if err := os.Remove(filepath.Join(g.root, "app/data")); err != nil {
		t.Fatal(err)
	}
	if err := g.mountApp(cfg); !errors.Is(err, errMount) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("a root that cannot be moved: %v", err)
	}
}
