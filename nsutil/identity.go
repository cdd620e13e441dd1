package nsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ParseLink parses a namespace link's target as readlink(2) gives it, such
// as "net:[4026531840]", into its kind and inode number.
func ParseLink(target string) (kind string, inode uint64, err error) {
	kind, rest, ok := strings.Cut(target, ":[")
	if !ok || kind == "" || !strings.HasSuffix(rest, "]") {
		return "", 0, fmt.Errorf("parse namespace link %q: want kind:[inode]", target)
	}
	inode, err = strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("parse namespace link %q: %w", target, err)
	}
	return kind, inode, nil
}

// Namespaces lists the namespaces of process pid under procRoot: kind →
// inode number. Kinds the kernel does not have are left out.
func Namespaces(procRoot string, pid int) (map[string]uint64, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "ns")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list namespaces of pid %d: %w", pid, err)
	}
	out := make(map[string]uint64, len(entries))
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read namespace %s of pid %d: %w", e.Name(), pid, err)
		}
		_, inode, err := ParseLink(target)
		if err != nil {
			return nil, fmt.Errorf("read namespace %s of pid %d: %w", e.Name(), pid, err)
		}
		out[e.Name()] = inode
	}
	return out, nil
}

// Inode is the inode number of a namespace file: a /proc/<pid>/ns/* link or
// a bind mount of one.
func Inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat namespace %s: %w", path, err)
	}
	return st.Ino, nil
}
