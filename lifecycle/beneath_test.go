package lifecycle

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// target is a directory outside the store with a file and a
// sub-directory, which no store operation may touch.
func target(t *testing.T) (dir string, intact func() bool) {
	t.Helper()
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, func() bool {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return slices.Equal(names, []string{"keep", "sub"})
	}
}

// TestStoreRefusesSymlinkedTaskDir: a task directory that is a symlink is
// an error naming it, for every operation; the directory it points at is
// never written to nor emptied.
func TestStoreRefusesSymlinkedTaskDir(t *testing.T) {
	st := Store{Root: t.TempDir()}
	elsewhere, intact := target(t)
	if err := st.Claim(&Record{ID: "real", Namespace: "ns", Status: Creating}); err != nil {
		t.Fatal(err)
	}
	link := st.Dir("ns", "web")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	unsafe := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s through a symlinked task directory: %v; want ErrUnsafePath", what, err)
		}
	}
	_, err := st.Load("ns", "web")
	unsafe("load", err)
	unsafe("save", st.Save(&Record{ID: "web", Namespace: "ns"}))
	unsafe("save spec", st.SaveSpec("ns", "web", nil))
	_, err = st.Lock("ns", "web")
	unsafe("lock", err)
	unsafe("remove", st.Remove("ns", "web"))
	unsafe("claim", st.Claim(&Record{ID: "web", Namespace: "ns"}))
	if ok, err := st.Exists("ns", "web"); !ok || err != nil {
		t.Errorf("a symlink does not take the name: %v, %v", ok, err)
	}
	if ids, _ := st.IDs("ns"); !slices.Equal(ids, []string{"real", "web"}) {
		t.Errorf("IDs %v: want the symlink's name listed too", ids)
	}
	if !intact() {
		t.Fatal("the symlink's target was changed")
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink itself was removed: %v", err)
	}

	// The same under libcontainer's directory of the task.
	if err := os.Symlink(elsewhere, st.ContainerDir("ns", "real")); err != nil {
		t.Fatal(err)
	}
	unsafe("check container", st.CheckContainer("ns", "real"))
	unsafe("remove container dir", st.RemoveContainerDir("ns", "real"))
	if !intact() {
		t.Fatal("the symlink's target was changed")
	}
}

// TestStoreRemoveCrossesNoSymlink: removing a task directory removes the
// symlinks in it, never what they point at.
func TestStoreRemoveCrossesNoSymlink(t *testing.T) {
	st := Store{Root: t.TempDir()}
	elsewhere, intact := target(t)
	if err := st.Claim(&Record{ID: "web", Namespace: "ns", Status: Creating}); err != nil {
		t.Fatal(err)
	}
	dir := st.Dir("ns", "web")
	for name, to := range map[string]string{"dir-link": elsewhere, "file-link": filepath.Join(elsewhere, "keep")} {
		if err := os.Symlink(to, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "nested"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, "nested", "link")); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove("ns", "web"); err != nil {
		t.Fatal(err)
	}
	if !intact() {
		t.Fatal("removal went through a symlink")
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("task directory left: %v", err)
	}
}

// TestStoreRecordMustMatchItsPlace: a record copied, hard-linked or
// symlinked from another task, or holding unrelated JSON, is corrupt and
// never taken for a torn one that libcontainer's state may rebuild; a
// record is never saved outside its own directory.
func TestStoreRecordMustMatchItsPlace(t *testing.T) {
	st := Store{Root: t.TempDir()}
	for _, id := range []string{"a", "b", "c", "d"} {
		if err := st.Claim(&Record{ID: id, Namespace: "ns", Status: Created}); err != nil {
			t.Fatal(err)
		}
	}
	record := func(id string) string { return filepath.Join(st.Dir("ns", id), recordFile) }
	b, err := os.ReadFile(record("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(record("a"), b, 0o600); err != nil { // a copy of b's
		t.Fatal(err)
	}
	os.Remove(record("c"))
	if err := os.Symlink(record("b"), record("c")); err != nil {
		t.Fatal(err)
	}
	os.Remove(record("d"))
	if err := os.WriteFile(record("d"), []byte(`{"unrelated": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "c", "d"} {
		rec, err := st.Load("ns", id)
		if !errors.Is(err, ErrCorrupt) || errors.Is(err, errTorn) {
			t.Errorf("load %s: %+v, %v; want a corrupt record, not a torn one", id, rec, err)
		}
	}
	if err := os.WriteFile(record("d"), []byte(`{"id": "d", "nam`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load("ns", "d"); !errors.Is(err, errTorn) {
		t.Errorf("load of a torn record: %v; want it marked torn", err)
	}
	for _, bad := range []*Record{{ID: "", Namespace: "ns"}, {ID: "x", Namespace: ""}, {ID: "x", Namespace: "../ns"}} {
		if err := st.Save(bad); err == nil {
			t.Errorf("saved a record of no place: %+v", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(st.Root, ".tasks", recordFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a stray record was written: %v", err)
	}
	if err := st.Remove("ns", "c"); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Load("ns", "b"); err != nil || got.ID != "b" {
		t.Fatalf("removing c's symlinked record touched b's: %+v, %v", got, err)
	}
}

// TestStoreCheckContainer: libcontainer's state of a task must name the
// task.
func TestStoreCheckContainer(t *testing.T) {
	st := Store{Root: t.TempDir()}
	if err := st.CheckContainer("ns", "web"); err != nil {
		t.Fatalf("no state yet: %v", err)
	}
	dir := st.ContainerDir("ns", "web")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(id string) {
		b, _ := json.Marshal(map[string]string{"id": id})
		if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("web")
	if err := st.CheckContainer("ns", "web"); err != nil {
		t.Fatalf("its own state: %v", err)
	}
	write("other")
	if err := st.CheckContainer("ns", "web"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("another's state: %v; want ErrCorrupt", err)
	}
}
