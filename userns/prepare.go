package userns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/rootfs"
)

// Prepare makes what Check allowed, for a task that makes a user
// namespace of its own and whose root will lie in its scratch directory
// (idmapped, an overlay or the host's root), before the root is made
// (rootfs.Prepare): it makes scratchDir and lets everyone search (not
// list) it and the directories above it up to the state root, so that
// the task's root, an unprivileged host user, can reach its root; and
// mounts a root volume that the task's root does not own idmapped there,
// pointing spec's root.path at it (a writable root's overlay then lies
// on it). Other tasks get nothing. undo removes the scratch directory
// and what is mounted in it (rootfs.Cleanup).
func (h Host) Prepare(spec *specs.Spec, scratchDir string) (undo func() error, err error) {
	if !rootfs.NewUserNS(spec) || spec.Root == nil || !rootInScratch(spec) {
		return func() error { return nil }, nil
	}
	if err := rootfs.MakeScratch(scratchDir); err != nil {
		return nil, fmt.Errorf("prepare root: %w", err)
	}
	undo = func() error { return rootfs.Cleanup(scratchDir) }
	err = h.reach(scratchDir)
	if err == nil && needsIDMap(spec) {
		err = h.idmapRoot(spec, scratchDir)
	}
	if err != nil {
		if cerr := undo(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("prepare root: %w", err)
	}
	return undo, nil
}

// reach lets everyone search scratchDir and the directories above it up
// to the state root.
func (h Host) reach(scratchDir string) error {
	root, dir := filepath.Clean(h.StateRoot), filepath.Clean(scratchDir)
	if rel, err := filepath.Rel(root, dir); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("scratch %s is not below the state root %s", dir, root)
	}
	for ; dir != root; dir = filepath.Dir(dir) {
		if err := addSearch(dir); err != nil {
			return err
		}
	}
	return addSearch(root)
}

// addSearch lets everyone search (not list) the directory dir.
func addSearch(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("make %s searchable: %w", dir, err)
	}
	if mode := fi.Mode().Perm(); mode&0o011 != 0o011 {
		if err := os.Chmod(dir, mode|0o011); err != nil {
			return fmt.Errorf("make %s searchable: %w", dir, err)
		}
	}
	return nil
}
