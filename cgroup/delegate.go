package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// DelegateLeaf is the name of a delegated task's own cgroup below the
// cgroup that holds its limits: the task sees it as its root.
const DelegateLeaf = "task"

// Owner is who a delegated cgroup is handed to: the host IDs of the
// task's root (a task in a user namespace), so that it may write its
// cgroup's files.
type Owner struct {
	UID, GID int
}

// MakeDelegated makes the cgroup parent with limits set and, below it,
// the task's own cgroup DelegateLeaf with no limits, in every hierarchy.
// The limits stay in parent, out of the task's reach: the task gets a
// cgroup namespace rooted at the leaf. With owner the leaf's directories
// and files are handed to it. What it made is removed again on failure.
func MakeDelegated(parent string, limits *cgroups.Resources, owner *Owner) (err error) {
	if !path.IsAbs(parent) {
		return fmt.Errorf("delegate cgroup %q: want an absolute path", parent)
	}
	defer func() {
		if err != nil {
			if hier, herr := Hierarchies(); herr == nil {
				_ = RemoveTree(hier, parent)
			}
		}
	}()
	pm, err := manager.New(&cgroups.Cgroup{Path: parent, Resources: limits})
	if err != nil {
		return fmt.Errorf("delegate cgroup %s: %w", parent, err)
	}
	if err := pm.Apply(-1); err != nil {
		return fmt.Errorf("delegate cgroup %s: make it: %w", parent, err)
	}
	if err := pm.Set(limits); err != nil {
		return fmt.Errorf("delegate cgroup %s: set its limits: %w", parent, err)
	}
	leaf := path.Join(parent, DelegateLeaf)
	lm, err := manager.New(&cgroups.Cgroup{Path: leaf, Resources: &cgroups.Resources{}})
	if err != nil {
		return fmt.Errorf("delegate cgroup %s: %w", leaf, err)
	}
	if err := lm.Apply(-1); err != nil {
		return fmt.Errorf("delegate cgroup %s: make it: %w", leaf, err)
	}
	if owner == nil {
		return nil
	}
	for _, dir := range uniqueDirs(lm.GetPaths()) {
		if err := chownCgroup(dir, *owner); err != nil {
			return fmt.Errorf("delegate cgroup %s: %w", leaf, err)
		}
	}
	return nil
}

// SetLimits sets limits on the cgroup p (absolute): what an update of a
// delegated task changes.
func SetLimits(p string, limits *cgroups.Resources) error {
	m, err := manager.New(&cgroups.Cgroup{Path: p, Resources: limits})
	if err != nil {
		return fmt.Errorf("set limits of cgroup %s: %w", p, err)
	}
	if err := m.Set(limits); err != nil {
		return fmt.Errorf("set limits of cgroup %s: %w", p, err)
	}
	return nil
}

func uniqueDirs(paths map[string]string) []string {
	var dirs []string
	for _, d := range paths {
		if d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return dirs
}

// chownCgroup hands a cgroup directory and its files to owner (on cgroup
// v2 that is what delegation to a user needs: the directory,
// cgroup.procs, cgroup.threads and cgroup.subtree_control, and here the
// interface files too, whose limits its parent caps anyway).
func chownCgroup(dir string, owner Owner) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("hand over %s: %w", dir, err)
	}
	if err := os.Lchown(dir, owner.UID, owner.GID); err != nil {
		return fmt.Errorf("hand over %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if err := os.Lchown(filepath.Join(dir, e.Name()), owner.UID, owner.GID); err != nil {
			return fmt.Errorf("hand over %s: %w", dir, err)
		}
	}
	return nil
}

// ThawTree thaws every cgroup at or below p in every hierarchy (v1's
// freezer.state, v2's cgroup.freeze): a task with a delegated cgroup may
// freeze cgroups it made, and a frozen process does not die of SIGKILL
// until it is thawed; thawing the task's own cgroup does not thaw a
// child frozen by itself.
func ThawTree(hierarchies []string, p string) error {
	var errs []error
	walkTree(hierarchies, p, func(dir string) {
		for file, thawed := range map[string]string{"freezer.state": "THAWED", "cgroup.freeze": "0"} {
			err := writeExisting(filepath.Join(dir, file), thawed)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("thaw cgroup %s: %w", dir, err))
			}
		}
	})
	return errors.Join(errs...)
}

// writeExisting writes value to an existing file: a cgroup's interface
// files cannot be created, only written.
func writeExisting(name, value string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	return errors.Join(err, f.Close())
}

// TreePIDs lists the processes at or below the cgroup p in any hierarchy.
func TreePIDs(hierarchies []string, p string) ([]int, error) {
	var pids []int
	var errs []error
	walkTree(hierarchies, p, func(dir string) {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			return // removed meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("list processes of cgroup %s: %w", dir, err))
			return
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
	})
	slices.Sort(pids)
	return pids, errors.Join(errs...)
}

// RemoveTree removes the cgroup p and every cgroup below it, deepest
// first, in every hierarchy; its processes must be gone. A missing one is
// fine.
func RemoveTree(hierarchies []string, p string) error {
	var errs []error
	for _, h := range hierarchies {
		if err := cgroups.RemovePath(filepath.Join(h, p)); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", filepath.Join(h, p), err))
		}
	}
	return errors.Join(errs...)
}

// walkTree calls fn for every cgroup directory at or below p, parents
// before children, in every hierarchy.
func walkTree(hierarchies []string, p string, fn func(dir string)) {
	for _, h := range hierarchies {
		_ = filepath.WalkDir(filepath.Join(h, p), func(dir string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				fn(dir)
			}
			return nil // a cgroup removed meanwhile is skipped
		})
	}
}
