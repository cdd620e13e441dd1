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
