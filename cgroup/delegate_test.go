package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fakeTree makes, in two fake hierarchies, the cgroup /task/P with a
// child made by the task (and a grandchild in the first), each with the
// given files.
func fakeTree(t *testing.T, files map[string]string) []string {
	t.Helper()
	hier := []string{t.TempDir(), t.TempDir()}
	for i, h := range hier {
		dirs := []string{"task/P", "task/P/task", "task/P/task/sub"}
		if i == 0 {
			dirs = append(dirs, "task/P/task/sub/deeper")
		}
		for _, d := range dirs {
			dir := filepath.Join(h, d)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return hier
}

// TestThawTreeThawsEveryLevel: every cgroup of the tree, the task's own
// sub-cgroups at any depth included, is thawed in both cgroup versions'
// files; cgroups outside the tree are left alone.
func TestThawTreeThawsEveryLevel(t *testing.T) {
	hier := fakeTree(t, map[string]string{"freezer.state": "FROZEN", "cgroup.freeze": "1"})
	outside := filepath.Join(hier[0], "task", "freezer.state")
	if err := os.WriteFile(outside, []byte("FROZEN"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ThawTree(hier, "/task/P"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range hier {
		_ = filepath.WalkDir(filepath.Join(h, "task", "P"), func(p string, d os.DirEntry, err error) error {
			if d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(p)
			want := map[string]string{"freezer.state": "THAWED", "cgroup.freeze": "0"}[d.Name()]
			if string(b) != want {
				t.Errorf("%s: %q, want %q", p, b, want)
			}
			n++
			return nil
		})
	}
	if n != 14 {
		t.Errorf("%d files looked at, want 14", n)
	}
	if b, _ := os.ReadFile(outside); string(b) != "FROZEN" {
		t.Errorf("a cgroup outside the tree was thawed: %q", b)
	}
}

// TestThawTreeWithoutFreezer: a hierarchy without freezer files (any v1
// controller but the freezer) is no error and gets no file made.
func TestThawTreeWithoutFreezer(t *testing.T) {
	hier := fakeTree(t, map[string]string{"cgroup.procs": ""})
	if err := ThawTree(hier, "/task/P"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(hier[0], "task", "P", "freezer.state")); !os.IsNotExist(err) {
		t.Fatalf("freezer.state made where there was none: %v", err)
	}
}

// TestTreePIDs: the processes of every level of the tree in every
// hierarchy, each once.
func TestTreePIDs(t *testing.T) {
	hier := fakeTree(t, map[string]string{"cgroup.procs": ""})
	procs := map[string]string{
		filepath.Join(hier[0], "task/P/task"):            "10\n11\n",
		filepath.Join(hier[0], "task/P/task/sub/deeper"): "12\n",
		filepath.Join(hier[1], "task/P/task/sub"):        "11\n12\n13\n",
		filepath.Join(hier[1], "task"):                   "99\n", // outside the tree
	}
	for dir, content := range procs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pids, err := TreePIDs(hier, "/task/P")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{10, 11, 12, 13}; !slices.Equal(pids, want) {
		t.Fatalf("pids %v, want %v", pids, want)
	}
}

// TestRemoveTree: the tree goes, deepest first, from every hierarchy;
// what is above it stays; a tree already gone is no error.
func TestRemoveTree(t *testing.T) {
	hier := fakeTree(t, nil)
	if err := RemoveTree(hier, "/task/P"); err != nil {
		t.Fatal(err)
	}
	for _, h := range hier {
		if _, err := os.Stat(filepath.Join(h, "task", "P")); !os.IsNotExist(err) {
			t.Errorf("%s/task/P still there: %v", h, err)
		}
		if _, err := os.Stat(filepath.Join(h, "task")); err != nil {
			t.Errorf("the parent went too: %v", err)
		}
	}
	if err := RemoveTree(hier, "/task/P"); err != nil {
		t.Fatalf("again: %v", err)
	}
}

// TestMakeDelegatedWantsAbsolutePath: a relative path (one that would
// land below the caller's own cgroup) is refused before anything is made.
func TestMakeDelegatedWantsAbsolutePath(t *testing.T) {
	if err := MakeDelegated("relative/P", nil, nil); err == nil {
		t.Fatal("a relative path was taken")
	}
}
