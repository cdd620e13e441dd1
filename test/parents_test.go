package test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lf-edge/moor/cgroup"
)

// TestParentCgroupsShared: two tasks below parents neither found there
// (<run>-parents/shared/a and …/b): the parents moor made stay while
// either task uses them, whichever is deleted first, and go with the
// last.
func TestParentCgroupsShared(t *testing.T) {
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	top := cgroupRunParent + "-parents"
	parent := top + "/shared"
	exists := func(p string) bool {
		for _, h := range hier {
			if _, err := os.Stat(filepath.Join(h, p)); err == nil {
				return true
			}
		}
		return false
	}
	for _, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
		ids := map[string]string{}
		for _, name := range []string{"a", "b"} {
			b := newBundle(t, "sleep", "1000")
			b.Spec.Linux.CgroupsPath = parent + "/" + name
			createTask(t, b)
			ids[name] = b.ID
		}
		if !exists(parent) {
			t.Fatalf("parent %s was not made", parent)
		}
		mustMoor(t, "delete", "--force", ids[order[0]])
		if !exists(parent) || !exists(parent+"/"+order[1]) {
			t.Fatalf("deleting %s first removed the parent %s, still in use by %s", order[0], parent, order[1])
		}
		mustMoor(t, "delete", "--force", ids[order[1]])
		if exists(parent) || exists(top) {
			t.Fatalf("the parents %s and %s outlived the last task below them", parent, top)
		}
	}
}
