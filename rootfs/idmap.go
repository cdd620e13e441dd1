package rootfs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/nsutil"
	"github.com/lf-edge/moor/reaper"
)

// scratchIDMapped is the scratch entry where a task's root is mounted
// idmapped: the root volume as the task's user namespace sees it.
const scratchIDMapped = "idmapped"

// ErrIDMap is returned when a mount cannot be idmapped: the kernel, or
// the filesystem, cannot do it.
var ErrIDMap = errors.New("cannot idmap")

// ErrUnreachable is returned when a task in a user namespace could not
// reach its root: a directory on the way does not let it search.
var ErrUnreachable = errors.New("out of the reach of the task's root")

// HostRoot is the host UID and GID of the task's root (ID 0 in its user
// namespace); ok is false when the spec makes no user namespace of its
// own or does not map ID 0.
func HostRoot(spec *specs.Spec) (uid, gid uint32, ok bool) {
	if !newUserNS(spec) {
		return 0, 0, false
	}
	uid, uok := HostID(spec.Linux.UIDMappings, 0)
	gid, gok := HostID(spec.Linux.GIDMappings, 0)
	return uid, gid, uok && gok
}

// HostID is the host ID of the ID inside a user namespace with mappings m.
func HostID(m []specs.LinuxIDMapping, inside uint32) (uint32, bool) {
	for _, r := range m {
		if inside >= r.ContainerID && uint64(inside) < uint64(r.ContainerID)+uint64(r.Size) {
			host := uint64(r.HostID) + uint64(inside-r.ContainerID)
			return uint32(host), host <= math.MaxUint32
		}
	}
	return 0, false
}

// newUserNS says whether spec makes a user namespace of its own.
func newUserNS(spec *specs.Spec) bool {
	if spec.Linux == nil {
		return false
	}
	i := namespaceIndex(spec, specs.UserNamespace)
	return i >= 0 && spec.Linux.Namespaces[i].Path == ""
}

// NeedsIDMap says whether spec's root must be mounted idmapped: the task
// makes a user namespace of its own, its root is not the host's, and the
// root directory is not owned by the task's root already (a root volume
// chowned to the mapped range needs nothing).
func NeedsIDMap(spec *specs.Spec) bool {
	uid, gid, ok := HostRoot(spec)
	if !ok || spec.Root == nil || filepath.Clean(spec.Root.Path) == "/" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(spec.Root.Path, &st); err != nil {
		return true // Prepare names the problem
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

// CheckIDMap makes sure, before anything is made, that what spec wants
// idmapped can be: its root (when NeedsIDMap) and the mounts that ask for
// it, each on a filesystem the kernel can idmap. It makes a user
// namespace with the spec's mappings to try, through a helper started by
// rp (see nsutil.NewUserNS); nothing is mounted.
func CheckIDMap(spec *specs.Spec, rp *reaper.Reaper) error {
	srcs := idmapMounts(spec)
	if NeedsIDMap(spec) {
		srcs = append([]string{spec.Root.Path}, srcs...)
	}
	if len(srcs) == 0 {
		return nil
	}
	userns, err := specUserNS(spec, rp)
	if err != nil {
		return err
	}
	defer userns.Close()
	for _, src := range srcs {
		fd, err := cloneIDMapped(src, userns)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	return nil
}

func specUserNS(spec *specs.Spec, rp *reaper.Reaper) (*os.File, error) {
	if spec.Linux == nil {
		return nil, fmt.Errorf("%w: no user namespace mappings", ErrIDMap)
	}
	f, err := nsutil.NewUserNS(rp, idMaps(spec.Linux.UIDMappings), idMaps(spec.Linux.GIDMappings))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIDMap, err)
	}
	return f, nil
}

func idMaps(m []specs.LinuxIDMapping) []nsutil.IDMap {
	out := make([]nsutil.IDMap, len(m))
	for i, r := range m {
		out[i] = nsutil.IDMap{Inside: r.ContainerID, Host: r.HostID, Size: r.Size}
	}
	return out
}

// cloneIDMapped returns a detached copy of the mount at src, idmapped
// through userns: an open_tree(2) file descriptor, attached nowhere
// until moved.
func cloneIDMapped(src string, userns *os.File) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("%w %s: clone its mount: %w", ErrIDMap, src, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
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

// idmapRoot mounts spec's root idmapped in scratchDir, when NeedsIDMap,
// and points spec at it; a writable root's overlay then lies on it. The
// scratch directory is made searchable (not readable) by others, so that
// the task's root, an unprivileged host user, can reach its root.
func idmapRoot(spec *specs.Spec, scratchDir string, rp *reaper.Reaper) error {
	if !NeedsIDMap(spec) {
		return nil
	}
	userns, err := specUserNS(spec, rp)
	if err != nil {
		return err
	}
	defer userns.Close()
	fd, err := cloneIDMapped(spec.Root.Path, userns)
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
	if err := searchable(scratchDir, 3); err != nil { // <base>/<namespace>/<id>
		return fmt.Errorf("idmap root: %w", err)
	}
	spec.Root = &specs.Root{Path: dst, Readonly: spec.Root.Readonly}
	return nil
}

// searchable adds search permission for everyone to dir and the levels-1
// directories above it.
func searchable(dir string, levels int) error {
	for range levels {
		if err := AddSearch(dir); err != nil {
			return err
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// AddSearch lets everyone search (not list) the directory dir.
func AddSearch(dir string) error {
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

// CheckSearchable makes sure the host user uid (group gid, no others) can
// reach dir: dir and each directory above it must let that user search
// it. A task in a user namespace reaches its root as such a user.
func CheckSearchable(dir string, uid, gid uint32) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, d, err)
		}
		if !canSearch(st, uid, gid) {
			return fmt.Errorf("%w: host user %d cannot search %s (mode %04o, owner %d:%d): allow it (chmod o+x)",
				ErrUnreachable, uid, d, st.Mode&0o7777, st.Uid, st.Gid)
		}
		if d == "/" {
			return nil
		}
	}
}

func canSearch(st unix.Stat_t, uid, gid uint32) bool {
	switch {
	case st.Uid == uid:
		return st.Mode&0o100 != 0
	case st.Gid == gid:
		return st.Mode&0o010 != 0
	default:
		return st.Mode&0o001 != 0
	}
}

// copyOwner gives dst the owner and mode of src's root: an overlay's root
// looks like its upper directory, which must look like the root volume
// (seen through an idmapped mount, owned by the task's root).
func copyOwner(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return fmt.Errorf("owner of %s: %w", src, err)
	}
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("owner of %s: %w", dst, err)
	}
	if err := os.Chmod(dst, os.FileMode(st.Mode&0o777)); err != nil {
		return fmt.Errorf("mode of %s: %w", dst, err)
	}
	return nil
}
