package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/atomicfile"

	"github.com/lf-edge/moor/cgroup"
)

// parentsFile lists the parent cgroups moor made, for every task under a
// state root: a parent is removed when it is empty, whichever task using
// it goes last, and only if moor made it.
const parentsFile = "cgroup-parents.json"

// updateParents runs fn on the registry of parent cgroups under the
// root's lock and saves what fn leaves; the registry is read and written
// as every file beneath the root (a symlink there is refused, or replaced
// by the write, never followed).
func (s Store) updateParents(fn func(parents []string) []string) error {
	if err := os.MkdirAll(s.Root, 0o700); err != nil {
		return fmt.Errorf("cgroup parents: %w", err)
	}
	root, err := os.Open(s.Root)
	if err != nil {
		return fmt.Errorf("cgroup parents: %w", err)
	}
	defer root.Close()
	if err := unix.Flock(int(root.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("cgroup parents: lock: %w", err)
	}
	// A writer killed halfway left its temporary file; under the lock,
	// every one there is such a leftover.
	if err := atomicfile.SweepAt(root, parentsFile); err != nil {
		return fmt.Errorf("cgroup parents: %w", err)
	}
	var parents []string
	var b []byte
	f, err := openAt(root, parentsFile, unix.O_RDONLY, beneath) // the root held open and locked
	if err == nil {
		b, err = readRegular(f)
		f.Close()
	}
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &parents); err != nil {
			return fmt.Errorf("cgroup parents: read %s: %w", parentsFile, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cgroup parents: %w", err)
	}
	after := fn(slices.Clone(parents))
	if slices.Equal(after, parents) {
		return nil
	}
	if len(after) == 0 {
		if err := unix.Unlinkat(int(root.Fd()), parentsFile, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("cgroup parents: remove %s: %w", parentsFile, err)
		}
		return nil
	}
	if b, err = json.Marshal(after); err == nil {
		err = atomicfile.WriteAt(root, parentsFile, b, 0o600)
	}
	if err != nil {
		return fmt.Errorf("cgroup parents: %w", err)
	}
	return nil
}

// noteCgroupParents adds the parents a task's create is about to make.
func (s *Tasks) noteCgroupParents(rec *Record) error {
	if len(rec.CgroupParents) == 0 {
		return nil
	}
	return s.store.updateParents(func(parents []string) []string {
		for _, p := range rec.CgroupParents {
			if !slices.Contains(parents, p) {
				parents = append(parents, p)
			}
		}
		slices.Sort(parents)
		return parents
	})
}

// removeCgroupParents removes, once the task's own cgroup is gone, the
// empty parents moor made on its path, deepest first, up to the first one
// that is still in use or that moor did not make.
func (s *Tasks) removeCgroupParents(rec *Record) {
	cgroup.RemoveEmptyDirs(rec.CgroupParentDirs)
	if !path.IsAbs(rec.CgroupPath) {
		return
	}
	hier := s.hierarchies()
	err := s.store.updateParents(func(parents []string) []string {
		for dir := path.Dir(path.Clean(rec.CgroupPath)); dir != "/"; dir = path.Dir(dir) {
			i := slices.Index(parents, dir)
			if i < 0 {
				break // not moor's: it and what is above stay
			}
			cgroup.RemoveEmpty(hier, []string{dir})
			if cgroup.Exists(hier, dir) {
				break // another task still uses it
			}
			parents = slices.Delete(parents, i, i+1)
		}
		return parents
	})
	if err != nil {
		s.log.Warn("remove cgroup parents", "id", rec.ID, "err", err)
	}
}
