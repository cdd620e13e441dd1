package userns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// scratchIDMapped is the scratch entry where a task's root is mounted
// idmapped: the root volume as the task's user namespace sees it.
const scratchIDMapped = "idmapped"

// ErrIDMap is returned when a mount cannot be idmapped: the kernel, or
// the filesystem, cannot do it.
var ErrIDMap = errors.New("cannot idmap")

// needsIDMap says whether spec's root must be mounted idmapped: the task
// makes a user namespace of its own, its root is not the host's, and the
// root directory is not owned by the task's root already (a root volume
// chowned to the mapped range needs nothing).
func needsIDMap(spec *specs.Spec) bool {
	uid, gid, ok := hostRoot(spec)
	if !ok || spec.Root == nil || filepath.Clean(spec.Root.Path) == "/" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(spec.Root.Path, &st); err != nil {
		return true // mounting it names the problem
	}
	return st.Uid != uid || st.Gid != gid
}

// idmapMounts lists the sources of spec's mounts that ask to be idmapped
// (the idmap and ridmap options, or mappings of their own).
func idmapMounts(spec *specs.Spec) []string {
	var srcs []string
	for _, m := range spec.Mounts {
		if len(m.UIDMappings) > 0 || slices.Contains(m.Options, "idmap") || slices.Contains(m.Options, "ridmap") {
			srcs = append(srcs, m.Source)
		}
	}
	return srcs
}

// checkIDMap makes sure, before anything is made, that what spec wants
// idmapped can be: its root (when needsIDMap) and the mounts that ask for
// it, each on a filesystem the kernel can idmap. It makes a user
// namespace with the spec's mappings to try; nothing is mounted.
func (h Host) checkIDMap(spec *specs.Spec) error {
	srcs := idmapMounts(spec)
	if needsIDMap(spec) {
		srcs = append([]string{spec.Root.Path}, srcs...)
	}
	if len(srcs) == 0 {
		return nil
	}
	ns, err := h.specNS(spec)
	if err != nil {
		return err
	}
	defer ns.Close()
	for _, src := range srcs {
		fd, err := cloneIDMapped(src, ns)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	return nil
}

// specNS makes a user namespace with spec's mappings.
func (h Host) specNS(spec *specs.Spec) (*os.File, error) {
	if spec.Linux == nil {
		return nil, fmt.Errorf("%w: no user namespace mappings", ErrIDMap)
	}
	f, err := newNS(h.Reaper, spec.Linux.UIDMappings, spec.Linux.GIDMappings)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIDMap, err)
	}
	return f, nil
}

// cloneIDMapped returns a detached copy of the mount at src, idmapped
// through the user namespace ns: an open_tree(2) file descriptor,
// attached nowhere until moved.
func cloneIDMapped(src string, ns *os.File) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("%w %s: clone its mount: %w", ErrIDMap, src, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%w %s (filesystem %s): %w; chown the volume to the task's mapped IDs instead", ErrIDMap, src, fsType(src), err)
	}
	return fd, nil
}

// fsType names the filesystem a path is on, for error messages.
func fsType(p string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{
		unix.EXT4_SUPER_MAGIC: "ext4", unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs",
		unix.TMPFS_MAGIC: "tmpfs", unix.OVERLAYFS_SUPER_MAGIC: "overlay", unix.NFS_SUPER_MAGIC: "nfs",
		unix.SQUASHFS_MAGIC: "squashfs", unix.FUSE_SUPER_MAGIC: "fuse", unix.V9FS_MAGIC: "9p",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", st.Type)
}

// idmapRoot mounts spec's root idmapped in scratchDir and points spec at
// it.
func (h Host) idmapRoot(spec *specs.Spec, scratchDir string) error {
	ns, err := h.specNS(spec)
	if err != nil {
		return err
	}
	defer ns.Close()
	fd, err := cloneIDMapped(spec.Root.Path, ns)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	dst := filepath.Join(scratchDir, scratchIDMapped)
	if err := os.Mkdir(dst, 0o755); err != nil {
		return fmt.Errorf("idmap root: %w", err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("idmap root: attach at %s: %w", dst, err)
	}
	spec.Root = &specs.Root{Path: dst, Readonly: spec.Root.Readonly}
	return nil
}
