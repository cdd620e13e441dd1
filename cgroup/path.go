package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// ErrRelative is returned for a cgroup path that would land under the
// caller's own cgroup.
var ErrRelative = errors.New("cgroup path must be absolute")

// DefaultPath is the cgroup of a task whose spec names none.
func DefaultPath(namespace, id string) string {
	return "/" + namespace + "/" + id
}

// CheckPath accepts an absolute cgroupfs path, or with systemd a
// "slice:prefix:name" triple.
func CheckPath(p string, systemd bool) error {
	if systemd {
		if strings.Count(p, ":") != 2 {
			return fmt.Errorf("cgroup path %q: want slice:prefix:name with the systemd driver", p)
		}
		return nil
	}
	if !path.IsAbs(p) {
		return fmt.Errorf("cgroup path %q: %w", p, ErrRelative)
	}
	if path.Clean(p) == "/" {
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
