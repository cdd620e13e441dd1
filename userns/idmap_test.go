package userns

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNeedsIDMap: only a root the task's root does not own needs an
// idmapped mount, and only with a user namespace of the task's own and a
// root other than the host's.
func TestNeedsIDMap(t *testing.T) {
	dir := t.TempDir()
	if !needsIDMap(usernsSpec(dir)) {
		t.Error("a root owned by another user needs no idmap")
	}
	if needsIDMap(usernsSpec("/")) {
		t.Error("the host's root is idmapped")
	}
	joined := usernsSpec(dir)
	joined.Linux.Namespaces[1].Path = "/proc/1/ns/user"
	if needsIDMap(joined) {
		t.Error("a joined user namespace asks for an idmap")
	}
	plain := usernsSpec(dir)
	plain.Linux.Namespaces = plain.Linux.Namespaces[:1]
	if needsIDMap(plain) {
		t.Error("a task without a user namespace asks for an idmap")
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(dir, 100000, 100000); err != nil {
			t.Fatal(err)
		}
		if needsIDMap(usernsSpec(dir)) {
			t.Error("a root owned by the task's root needs an idmap")
		}
	}
}

// TestPrepare mounts a root owned by the host's root idmapped in the
// scratch directory, where the task's root owns it, with the way from the
// state root (not above it) searchable by everyone; undo leaves nothing.
// A root the task's root owns gets nothing.
func TestPrepare(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestPrepare needs root: it mounts")
	}
	above := t.TempDir()
	if err := os.Chmod(above, 0o700); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(above, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(state, ".scratch", "ns", "id")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := Host{StateRoot: state}
	spec := usernsSpec(root)
	undo, err := h.Prepare(spec, scratch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = undo() })
	if want := filepath.Join(scratch, scratchIDMapped); spec.Root.Path != want || !spec.Root.Readonly {
		t.Errorf("root %+v, want %s read-only", *spec.Root, want)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(spec.Root.Path, "f"), &st); err != nil || st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("a file of the root through the idmapped mount: owner %d:%d (%v), want 100000:100000", st.Uid, st.Gid, err)
	}
	for dir := scratch; dir != above; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o011 != 0o011 {
			t.Errorf("%s: %v (%v), want searchable by everyone", dir, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(above); err != nil || fi.Mode().Perm()&0o011 != 0 {
		t.Errorf("above the state root, %s: %v (%v), want it left closed", above, fi.Mode(), err)
	}
	if err := undo(); err != nil {
		t.Fatalf("undo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, ".scratch")); !os.IsNotExist(err) {
		t.Errorf("after undo the scratch is left: %v", err)
	}

	if err := os.Lchown(root, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	owned := usernsSpec(root)
	if _, err := h.Prepare(owned, scratch); err != nil || owned.Root.Path != root {
		t.Errorf("a root the task's root owns: %v, root %s", err, owned.Root.Path)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Errorf("a root the task's root owns got a scratch directory: %v", err)
	}
}

// TestReachStaysBelowStateRoot: a scratch directory that is not below the
// state root is refused before any mode changes.
func TestReachStaysBelowStateRoot(t *testing.T) {
	state := t.TempDir()
	for _, scratch := range []string{state, filepath.Dir(state), filepath.Join(state, "..", "other")} {
		if err := (Host{StateRoot: state}).reach(scratch); err == nil {
			t.Errorf("scratch %s below state root %s was taken", scratch, state)
		}
	}
}
