package cgroup

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// DefaultPath is the cgroup of a task whose spec names none.
func DefaultPath(namespace, id string) string {
	return "/" + namespace + "/" + id
}

// CheckPath accepts a cgroupfs path (a relative one lands under the
// caller's own cgroup, as runc places it), or with systemd a
// "slice:prefix:name" triple.
func CheckPath(p string, systemd bool) error {
	if systemd {
		if strings.Count(p, ":") != 2 {
			return fmt.Errorf("cgroup path %q: want slice:prefix:name with the systemd driver", p)
		}
		return nil
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return fmt.Errorf("cgroup path %q: \"..\" is not allowed", p)
		}
	}
	if path.Clean(p) == "/" || path.Clean(p) == "." {
		return fmt.Errorf("cgroup path %q: the root cgroup cannot hold a task", p)
	}
	return nil
}

// Hierarchies returns the mount points of every cgroup hierarchy on the
// host (the v1 controllers, named hierarchies and the unified tree).
func Hierarchies() ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("list cgroup mounts: %w", err)
	}
	var roots []string
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.Root != "/" || seen[m.Mountpoint] {
			continue
		}
		seen[m.Mountpoint] = true
		roots = append(roots, m.Mountpoint)
	}
	return roots, nil
}

// MissingAncestors lists, deepest last, the ancestors of the cgroup path p
// (not p itself) that exist in none of the hierarchies: the cgroups that
// creating p will make and that removing p should therefore remove too.
func MissingAncestors(hierarchies []string, p string) []string {
	var missing []string
	for dir := path.Dir(path.Clean(p)); dir != "/" && dir != "."; dir = path.Dir(dir) {
		if existsInAny(hierarchies, dir) {
			break
		}
		missing = append([]string{dir}, missing...)
	}
	return missing
}

func existsInAny(hierarchies []string, p string) bool {
	for _, h := range hierarchies {
		if _, err := os.Stat(filepath.Join(h, p)); err == nil {
			return true
		}
	}
	return false
}

// RemoveEmpty removes the given cgroups, deepest first, from every
// hierarchy. A cgroup that still has children or processes is left alone:
// it belongs to someone else now.
func RemoveEmpty(hierarchies []string, paths []string) {
	for i := len(paths) - 1; i >= 0; i-- {
		for _, h := range hierarchies {
			_ = os.Remove(filepath.Join(h, paths[i]))
		}
	}
}

// Exists reports whether the cgroup path exists in any hierarchy.
func Exists(hierarchies []string, p string) bool { return existsInAny(hierarchies, p) }

// LeafDirs are the directories, one per hierarchy, that the cgroup path p
// resolves to, as libcontainer resolves it: a relative path is joined to
// the caller's own cgroup in each hierarchy, as runc places it.
func LeafDirs(p string) ([]string, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: p, Resources: &cgroups.Resources{}})
	if err != nil {
		return nil, fmt.Errorf("resolve cgroup path %q: %w", p, err)
	}
	var dirs []string
	seen := map[string]bool{}
	for _, d := range m.GetPaths() {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return dirs, nil
}

// MissingParentDirs lists the ancestors of the leaf directories that do
// not exist yet, deepest last: the cgroups creating the leaves will make.
func MissingParentDirs(leaves []string) []string {
	var missing []string
	for _, leaf := range leaves {
		var chain []string
		for dir := filepath.Dir(leaf); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			if _, err := os.Stat(dir); err == nil {
				break
			}
			chain = append([]string{dir}, chain...)
		}
		missing = append(missing, chain...)
	}
	return missing
}

// RemoveEmptyDirs removes the given cgroup directories, the deepest first;
// one that still has children or processes is left alone.
func RemoveEmptyDirs(dirs []string) {
	sorted := slices.Clone(dirs)
	slices.SortFunc(sorted, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range sorted {
		_ = os.Remove(d)
	}
}

// Confine places the cgroup path p below parent: a relative p (or none,
// given as the default name) is joined to parent, an absolute p must lie
// below it. An empty parent confines nothing.
func Confine(parent, p string) (string, error) {
	if parent == "" {
		return p, nil
	}
	parent = path.Clean(parent)
	if !path.IsAbs(parent) {
		return "", fmt.Errorf("cgroup parent %q: must be absolute", parent)
	}
	if !path.IsAbs(p) {
		return path.Join(parent, p), nil
	}
	if clean := path.Clean(p); parent != "/" && !strings.HasPrefix(clean, parent+"/") {
		return "", fmt.Errorf("cgroup path %q: outside the cgroup parent %s", p, parent)
	}
	return p, nil
}
