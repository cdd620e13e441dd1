package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestHostID: an ID inside maps through the range that holds it; one no
// range holds, or one past 2^32-1 on the host, has none.
func TestHostID(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 10}}
	for inside, want := range map[uint32]uint32{0: 100000, 999: 100999, 1000: 300000, 1009: 300009} {
		if got, ok := HostID(m, inside); !ok || got != want {
			t.Errorf("HostID(%d) = %d, %v; want %d", inside, got, ok, want)
		}
	}
	for _, inside := range []uint32{1010, 65534} {
		if got, ok := HostID(m, inside); ok {
			t.Errorf("HostID(%d) = %d, want none", inside, got)
		}
	}
}

// usernsSpec is a spec making a user namespace that maps 0-65535 to
// 100000-165535, rooted at root.
func usernsSpec(root string) *specs.Spec {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	return &specs.Spec{
		Root: &specs.Root{Path: root, Readonly: true},
		Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.UserNamespace}},
			UIDMappings: m, GIDMappings: m,
		},
	}
}

// TestNeedsIDMap: only a root the task's root does not own needs an
// idmapped mount, and only with a user namespace of the task's own and a
// root other than the host's.
func TestNeedsIDMap(t *testing.T) {
	dir := t.TempDir()
	if !NeedsIDMap(usernsSpec(dir)) {
		t.Error("a root owned by another user needs no idmap")
	}
	if NeedsIDMap(usernsSpec("/")) {
		t.Error("the host's root is idmapped")
	}
	joined := usernsSpec(dir)
	joined.Linux.Namespaces[1].Path = "/proc/1/ns/user"
	if NeedsIDMap(joined) {
		t.Error("a joined user namespace asks for an idmap")
	}
	plain := usernsSpec(dir)
	plain.Linux.Namespaces = plain.Linux.Namespaces[:1]
	if NeedsIDMap(plain) {
		t.Error("a task without a user namespace asks for an idmap")
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(dir, 100000, 100000); err != nil {
			t.Fatal(err)
		}
		if NeedsIDMap(usernsSpec(dir)) {
			t.Error("a root owned by the task's root needs an idmap")
		}
	}
}

// TestCheckSearchable: a directory the host user cannot search, on the
// way or at the end, is named in an ErrUnreachable; with search allowed
// for others it passes.
func TestCheckSearchable(t *testing.T) {
	top := t.TempDir()
	deep := filepath.Join(top, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(top, 0o700); err != nil {
		t.Fatal(err)
	}
	err := CheckSearchable(deep, 100000, 100000)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), top+" (mode 0700") {
		t.Fatalf("under a 0700 directory: %v, want ErrUnreachable naming %s", err, top)
	}
	if err := AddSearch(top); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(top)
	if fi.Mode().Perm() != 0o711 {
		t.Fatalf("AddSearch gave mode %v, want 0711", fi.Mode().Perm())
	}
	if err := AddSearch(filepath.Dir(top)); err != nil { // the test's own temporary directory too
		t.Fatal(err)
	}
	if err := CheckSearchable(deep, 100000, 100000); err != nil {
		t.Fatalf("with search allowed: %v", err)
	}
}

// TestCanSearch: the owner's, the group's or the others' x bit decides,
// in that order, as the kernel's permission check does.
func TestCanSearch(t *testing.T) {
	type stat struct{ uid, gid, mode uint32 }
	for _, c := range []struct {
		st   stat
		want bool
	}{
		{stat{100000, 0, 0o700}, true},
		{stat{100000, 0, 0o077}, false}, // the owner's bits alone count
		{stat{0, 100000, 0o710}, true},
		{stat{0, 100000, 0o701}, false},
		{stat{0, 0, 0o711}, true},
		{stat{0, 0, 0o770}, false},
	} {
		st := unix.Stat_t{Uid: c.st.uid, Gid: c.st.gid, Mode: unix.S_IFDIR | c.st.mode}
		if got := canSearch(st, 100000, 100000); got != c.want {
			t.Errorf("%+v: %v, want %v", c.st, got, c.want)
		}
	}
}
