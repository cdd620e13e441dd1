package cgroup

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	if err := CheckPath("/default/web", false); err != nil {
		t.Fatal(err)
	}
	if err := CheckPath("default/web", false); err != nil {
		t.Fatalf("relative path (placed under the caller's cgroup, as runc does): %v", err)
	}
	if err := CheckPath(".", false); err == nil {
		t.Fatal("the caller's own cgroup accepted")
	}
	if err := CheckPath("/", false); err == nil {
		t.Fatal("root cgroup accepted")
	}
	if err := CheckPath("system.slice:moor:web", true); err != nil {
		t.Fatal(err)
	}
}

func TestMissingParentDirsAndRemoveEmptyDirs(t *testing.T) {
	h1, h2 := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(h1, "own/a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(h2, "own"), 0o755); err != nil {
		t.Fatal(err)
	}
	leaves := []string{filepath.Join(h1, "own/a/b/task"), filepath.Join(h2, "own/a/b/task")}
	got := MissingParentDirs(leaves)
	want := []string{filepath.Join(h1, "own/a/b"), filepath.Join(h2, "own/a"), filepath.Join(h2, "own/a/b")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MissingParentDirs = %v, want %v", got, want)
	}
	for _, l := range leaves {
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(h1, "own/a/b/other"), 0o755); err != nil {
		t.Fatal(err)
	}
	RemoveEmptyDirs(got)
	for dir, exists := range map[string]bool{
		filepath.Join(h1, "own/a/b"): true, // holds another cgroup now
		filepath.Join(h1, "own/a"):   true, // existed before
		filepath.Join(h2, "own/a"):   false,
		filepath.Join(h2, "own"):     true,
	} {
		if _, err := os.Stat(dir); (err == nil) != exists {
			t.Errorf("%s: exists %v, want %v", dir, err == nil, exists)
		}
	}
}

func TestMissingAncestorsAndRemoveEmpty(t *testing.T) {
	h1, h2 := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(h1, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := MissingAncestors([]string{h1, h2}, "/a/b/c/task")
	if want := []string{"/a/b", "/a/b/c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("MissingAncestors = %v, want %v", got, want)
	}
	for _, h := range []string{h1, h2} {
		if err := os.MkdirAll(filepath.Join(h, "a/b/c"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(h2, "a/b/other"), 0o755); err != nil {
		t.Fatal(err)
	}
	RemoveEmpty([]string{h1, h2}, got)
	if Exists([]string{h1}, "/a/b") || !Exists([]string{h1}, "/a") {
		t.Fatal("h1: want /a kept and /a/b removed")
	}
	if !Exists([]string{h2}, "/a/b/other") {
		t.Fatal("h2: a cgroup with a child was removed")
	}
}

func TestOOMKills(t *testing.T) {
	v1, v2 := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(v1, "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 0o644)
	os.WriteFile(filepath.Join(v2, "memory.events"), []byte("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"), 0o644)
	for dir, want := range map[string]uint64{v1: 2, v2: 1} {
		if n, err := OOMKills(dir); err != nil || n != want {
			t.Errorf("OOMKills(%s) = %d, %v; want %d", dir, n, err, want)
		}
	}
	if _, err := OOMKills(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not exist") {
		t.Fatalf("no memory files: %v", err)
	}
}

func TestConfine(t *testing.T) {
	for _, c := range []struct{ parent, p, want string }{
		{"", "/x/y", "/x/y"},
		{"", "rel/y", "rel/y"},
		{"/moor", "web", "/moor/web"},
		{"/moor", "/moor/web", "/moor/web"},
		{"/moor", "/moorish/web", ""},
		{"/moor", "/process_api/x", ""},
		{"/moor", "/moor", ""},
	} {
		got, err := Confine(c.parent, c.p)
		if (err != nil) != (c.want == "") || got != c.want && c.want != "" {
			t.Errorf("Confine(%q, %q) = %q, %v; want %q", c.parent, c.p, got, err, c.want)
		}
	}
	for _, p := range []string{"/a/../process_api/x", "/a/x/../../escape", "../up"} {
		if err := CheckPath(p, false); err == nil {
			t.Errorf("CheckPath(%q) accepted a path with ..", p)
		}
	}
}
