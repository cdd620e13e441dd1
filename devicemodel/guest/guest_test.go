package guest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	flags, data := parseOptions([]string{"nosuid", "ro", "mode=755", "size=64k", "strictatime", "rw"})
	if flags != unix.MS_NOSUID|unix.MS_RDONLY|unix.MS_STRICTATIME || data != "mode=755,size=64k" {
		t.Errorf("parseOptions = %#x, %q", flags, data)
	}
	if flags, data := parseOptions(nil); flags != 0 || data != "" {
		t.Errorf("no options = %#x, %q", flags, data)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"prog": 0o755, "noexec": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := lookPath("prog", "/nonexistent:"+dir); err != nil || p != filepath.Join(dir, "prog") {
		t.Errorf("lookPath(prog) = %q, %v", p, err)
	}
	if p, err := lookPath("./x/y", ""); err != nil || p != "./x/y" {
		t.Errorf("a path with a slash is taken as it is: %q, %v", p, err)
	}
	for _, name := range []string{"noexec", "adir", "missing"} {
		if _, err := lookPath(name, dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lookPath(%s) = %v, want not found", name, err)
		}
	}
}

func TestEnvValue(t *testing.T) {
	env := []string{"PATH=/bin", "HOME=/", "PATH=/usr/bin:/bin", "EMPTY="}
	if v := envValue(env, "PATH"); v != "/usr/bin:/bin" {
		t.Errorf("PATH = %q, want the last one", v)
	}
	if v := envValue(env, "NOPE"); v != "" {
		t.Errorf("NOPE = %q", v)
	}
}

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	good := Config{Root: Mount{Destination: "/", Type: MountType9p, Source: "moor-root"}, Process: Process{Args: []string{"/bin/true"}, UID: 1000}}
	b, _ := json.Marshal(good)
	p := filepath.Join(dir, "app.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ReadConfig(p)
	if err != nil || c.Process.UID != 1000 || c.Root.Source != "moor-root" {
		t.Fatalf("ReadConfig = %+v, %v", c, err)
	}
	if err := os.WriteFile(p, []byte(`{"process":{"args":[]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConfig(p); err == nil || !strings.Contains(err.Error(), "process.args") {
		t.Errorf("empty args: %v", err)
	}
}

// Every OCI rlimit name maps to the kernel's number.
func TestRlimitNames(t *testing.T) {
	for name, want := range map[string]int{"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_AS": unix.RLIMIT_AS,
		"RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_NPROC": unix.RLIMIT_NPROC} {
		if rlimits[name] != want {
			t.Errorf("%s = %d, want %d", name, rlimits[name], want)
		}
	}
	if len(rlimits) != 16 {
		t.Errorf("%d rlimits, want Linux's 16", len(rlimits))
	}
}

// A read-only root is overlaid only when it lacks a mount point, looked
// up inside the root (its symlinks followed as the app would) and not
// below an earlier mount; a writable root never is.
func TestMissingMountPoints(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"proc", "usr/lib", "var", "moor-appdata"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"lib": "usr/lib", "var/run": "/run", "srv": "/moor-appdata"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	mounts := []Mount{
		{Destination: "/proc", Type: "proc"},
		{Destination: "/dev", Type: MountTypeBind, Source: "/dev"},
		{Destination: "/dev/pts", Type: "devpts"}, // below /dev: devtmpfs makes it
		{Destination: "/srv", Type: "tmpfs"},      // an absolute symlink to a directory of the root's, not the host's
		{Destination: "/lib/modules", Type: MountType9p, Source: "moor-vol0"},
		{Destination: "/var/run", Type: "tmpfs"}, // /run is the root's, which has none (the host has one)
		{Destination: "/data/", Type: MountType9p, Source: "moor-vol1"},
	}
	ro := &Config{Root: Mount{Options: []string{"ro"}}, Mounts: mounts}
	got := missingMountPoints(ro, root)
	want := []string{"/dev", "/lib/modules", "/var/run", "/data"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("missing mount points = %q, want %q", got, want)
	}
	if !ro.ReadOnlyRoot() || !ro.MayOverlay() {
		t.Errorf("a root with option ro: ReadOnlyRoot %v, MayOverlay %v", ro.ReadOnlyRoot(), ro.MayOverlay())
	}
	rw := &Config{Mounts: mounts}
	if got := missingMountPoints(rw, root); got != nil {
		t.Errorf("a writable root's missing mount points = %q, want none: the guest makes them", got)
	}
	if rw.MayOverlay() {
		t.Error("a writable root without rootOverlay may be overlaid")
	}
	complete := &Config{Root: ro.Root, Mounts: mounts[:1]}
	if got := missingMountPoints(complete, root); got != nil {
		t.Errorf("a root with every mount point lacks %q", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "dev")); err == nil {
		t.Error("the decision made a mount point in the root")
	}
}

// Paths resolve inside the app's root as the app sees them.
func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"lib": "usr/lib", "run": "/usr/../../../var/run", "up": "../../..", "loop": "loop"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]string{
		"/lib/modules": "/usr/lib/modules", // relative, then a part that does not exist
		"/run/x":       "/var/run/x",       // absolute, its .. stopping at the root
		"/up/etc":      "/etc",
		"/data/":       "/data",
		"/":            "",
	} {
		if got, err := resolveIn(root, p); err != nil || got != filepath.Join(root, want) {
			t.Errorf("resolveIn(%s) = %q, %v, want %q", p, got, err, filepath.Join(root, want))
		}
	}
	if _, err := resolveIn(root, "/loop/x"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("a symlink loop: %v, want ELOOP", err)
	}
}
