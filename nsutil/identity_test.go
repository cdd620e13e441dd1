package nsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseLink(t *testing.T) {
	kind, ino, err := ParseLink("net:[4026531840]")
	if err != nil || kind != "net" || ino != 4026531840 {
		t.Fatalf("got %q %d %v", kind, ino, err)
	}
	for _, bad := range []string{"", "net", "net:[]", "net:[x]", ":[1]", "net:[1"} {
		if _, _, err := ParseLink(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestNamespacesFromFakeProc(t *testing.T) {
	proc := t.TempDir()
	dir := filepath.Join(proc, "42", "ns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"net": "net:[4026532001]", "pid": "pid:[4026532002]"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Namespaces(proc, 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["net"] != 4026532001 || got["pid"] != 4026532002 {
		t.Fatalf("got %v", got)
	}
}

func TestOwnNamespaces(t *testing.T) {
	got, err := Namespaces("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ino, err := Inode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if got["net"] != ino {
		t.Fatalf("net %d from the link, %d from stat", got["net"], ino)
	}
}
