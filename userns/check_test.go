package userns

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/rootfs"
)

// mappings builds ID mappings from {inside, host, size} triples.
func mappings(r ...[3]uint32) []specs.LinuxIDMapping {
	var out []specs.LinuxIDMapping
	for _, x := range r {
		out = append(out, specs.LinuxIDMapping{ContainerID: x[0], HostID: x[1], Size: x[2]})
	}
	return out
}

// TestCheckMappings: a mapping must map ID 0, to a host range that
// leaves out host ID 0, with no empty, overflowing or overlapping range;
// each error is a SpecError naming the field.
func TestCheckMappings(t *testing.T) {
	good := [][]specs.LinuxIDMapping{
		mappings([3]uint32{0, 100000, 65536}),
		mappings([3]uint32{0, 100000, 1}, [3]uint32{1, 200000, 1000}),
	}
	for _, g := range good {
		if err := checkMappings("linux.uidMappings", g); err != nil {
			t.Errorf("%+v: %v", g, err)
		}
	}
	for field, bad := range map[string][]specs.LinuxIDMapping{
		"linux.uidMappings:":             nil,
		"linux.uidMappings[0].size":      mappings([3]uint32{0, 100000, 0}),
		"linux.uidMappings[0].hostID":    mappings([3]uint32{0, 0, 65536}),
		"linux.uidMappings[1]: overlaps": mappings([3]uint32{0, 100000, 10}, [3]uint32{5, 300000, 10}),
		"linux.uidMappings[1]: overlap":  mappings([3]uint32{0, 100000, 10}, [3]uint32{10, 100005, 10}),
		"linux.uidMappings[0]:":          mappings([3]uint32{0, 4294967290, 10}),
		"does not map ID 0":              mappings([3]uint32{1, 100000, 10}),
	} {
		err := checkMappings("linux.uidMappings", bad)
		var se *SpecError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), field) {
			t.Errorf("%+v: %v, want a SpecError with %q", bad, err, field)
		}
	}
}

// TestHostID: an ID inside maps through the range that holds it; one no
// range holds, or one past 2^32-1 on the host, has none.
func TestHostID(t *testing.T) {
	m := mappings([3]uint32{0, 100000, 1000}, [3]uint32{1000, 300000, 10})
	for inside, want := range map[uint32]uint32{0: 100000, 999: 100999, 1000: 300000, 1009: 300009} {
		if got, ok := hostID(m, inside); !ok || got != want {
			t.Errorf("hostID(%d) = %d, %v; want %d", inside, got, ok, want)
		}
	}
	for _, inside := range []uint32{1010, 65534} {
		if got, ok := hostID(m, inside); ok {
			t.Errorf("hostID(%d) = %d, want none", inside, got)
		}
	}
}

// usernsSpec is a spec making a user namespace that maps 0-65535 to
// 100000-165535, rooted at root.
func usernsSpec(root string) *specs.Spec {
	m := mappings([3]uint32{0, 100000, 65536})
	return &specs.Spec{
		Root: &specs.Root{Path: root, Readonly: true},
		Linux: &specs.Linux{
			Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.UserNamespace}},
			UIDMappings: m, GIDMappings: m,
		},
	}
}

// TestCheck: mappings need a user namespace; a joined one is not
// checked; a kernel without user namespaces, or a bad mapping, is a
// SpecError naming the field; a root its root user cannot reach is
// ErrUnreachable naming root.path, or, for a root that will lie in the
// scratch directory, the directory above the state root.
func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestCheck needs root: it gives a root to the task's mapped root")
	}
	closed := filepath.Join(t.TempDir(), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(closed, "root") // the task's root's own: no idmap
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(root, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	h := Host{ProcRoot: "/proc", StateRoot: filepath.Join(closed, "state")}

	plain := usernsSpec(root)
	plain.Linux.Namespaces = plain.Linux.Namespaces[:1]
	joined := usernsSpec(root)
	joined.Linux.Namespaces[1].Path = "/proc/1/ns/user"
	hostRootMapped := usernsSpec(root)
	hostRootMapped.Linux.GIDMappings = mappings([3]uint32{0, 0, 65536})
	for want, s := range map[string]*specs.Spec{
		"linux.uidMappings: set, but linux.namespaces has no user namespace": plain,
		"linux.gidMappings[0].hostID: 0":                                     hostRootMapped,
	} {
		err := h.Check(s)
		var se *SpecError
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%v, want a SpecError %q", err, want)
		}
	}
	plain.Linux.UIDMappings, plain.Linux.GIDMappings = nil, nil
	for name, s := range map[string]*specs.Spec{"no user namespace": plain, "joined": joined} {
		if err := h.Check(s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	noUserNS := Host{ProcRoot: t.TempDir()} // a procfs without self/ns/user
	err := noUserNS.Check(usernsSpec(root))
	var se *SpecError
	if !errors.As(err, &se) || se.Field != "linux.namespaces" || !errors.Is(err, ErrNoUserNS) {
		t.Errorf("on a kernel without user namespaces: %v", err)
	}

	err = h.Check(usernsSpec(root))
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "root.path: ") || !strings.Contains(err.Error(), closed+" (mode 0700") {
		t.Errorf("a root under a closed directory: %v, want ErrUnreachable naming root.path and %s", err, closed)
	}
	writable := usernsSpec(t.TempDir())
	writable.Annotations = map[string]string{rootfs.WritableAnnotation: "true"}
	err = h.Check(writable)
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "the root, mounted below the state root: ") || !strings.Contains(err.Error(), closed+" (mode 0700") {
		t.Errorf("a root in a scratch directory under a closed directory: %v, want ErrUnreachable naming %s", err, closed)
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
	err := checkSearchable(deep, 100000, 100000)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), top+" (mode 0700") {
		t.Fatalf("under a 0700 directory: %v, want ErrUnreachable naming %s", err, top)
	}
	if err := addSearch(top); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(top)
	if fi.Mode().Perm() != 0o711 {
		t.Fatalf("addSearch gave mode %v, want 0711", fi.Mode().Perm())
	}
	if err := addSearch(filepath.Dir(top)); err != nil { // the test's own temporary directory too
		t.Fatal(err)
	}
	if err := checkSearchable(deep, 100000, 100000); err != nil {
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
