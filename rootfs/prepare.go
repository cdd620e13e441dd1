package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Entries of a task's scratch directory.
const (
	scratchRoot  = "root"  // the root the task gets: an overlay or a bind
	scratchUpper = "upper" // the overlay's upper directory: the task's writes
	scratchWork  = "work"  // the overlay's work directory
)

// Prepare makes spec's root and network real in scratchDir before the
// task is created, and points spec at them: a writable root becomes an
// overlay on the read-only root.path, the host's root a bind mount, and a
// task that moves host interfaces in gets a pinned network namespace (or
// keeps the one it joins) so that Cleanup can bring them back. Mount
// destinations that lead out of the root are refused.
//
// spec is changed in place (root.path, the network namespace's path);
// its slices are copied first, so a spec sharing them is not. scratchDir
// is missing, or holds only what the task's user namespace put there
// before (package userns: root.path may be an idmapped mount in it): a
// scratch directory left by a crashed create is the caller's to clean
// first (Cleanup). undo is Cleanup. A task that needs none of these gets
// no scratch directory of Prepare's.
func Prepare(spec *specs.Spec, scratchDir string) (undo func() error, err error) {
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, errors.New("prepare root: root.path is not set")
	}
	if !needsScratch(spec) {
		if err := CheckMounts(spec.Root.Path, spec.Mounts); err != nil {
			return nil, fmt.Errorf("prepare root: %w", err)
		}
		return func() error { return nil }, nil
	}
	if err := MakeScratch(scratchDir); err != nil {
		return nil, fmt.Errorf("prepare root: %w", err)
	}
	undo = func() error { return Cleanup(scratchDir) }
	if err := prepare(spec, scratchDir); err != nil {
		if cerr := undo(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("prepare root: %w", err)
	}
	return undo, nil
}

// RootInScratch says whether Prepare mounts spec's root in the scratch
// directory: a writable root (its overlay) or the host's root.
func RootInScratch(spec *specs.Spec) bool {
	return spec.Annotations[WritableAnnotation] == "true" || filepath.Clean(spec.Root.Path) == "/"
}

// needsScratch says whether spec's root or network needs a scratch
// directory: a root mounted there, or host interfaces to move in.
func needsScratch(spec *specs.Spec) bool {
	return RootInScratch(spec) || (spec.Linux != nil && len(spec.Linux.NetDevices) > 0)
}

func prepare(spec *specs.Spec, scratchDir string) error {
	root := filepath.Join(scratchDir, scratchRoot)
	switch {
	case spec.Annotations[WritableAnnotation] == "true":
		if filepath.Clean(spec.Root.Path) == "/" {
			return fmt.Errorf("annotation %s: the host's root is read-only", WritableAnnotation)
		}
		if err := mountOverlay(spec.Root.Path, scratchDir); err != nil {
			return err
		}
		spec.Root = &specs.Root{Path: root, Readonly: false}
	case filepath.Clean(spec.Root.Path) == "/":
		if err := os.Mkdir(root, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("/", root, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind the host root: %w", err)
		}
		spec.Root = &specs.Root{Path: root, Readonly: true}
	}
	if err := CheckMounts(spec.Root.Path, spec.Mounts); err != nil {
		return err
	}
	return prepareNet(spec, scratchDir)
}

// MakeScratch makes a scratch directory (mode 0700) and its parents. A
// concurrent Cleanup of a sibling may remove a parent just made, so it
// tries again.
func MakeScratch(dir string) error {
	var err error
	for range 5 {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			return nil
		}
	}
	return fmt.Errorf("make scratch directory: %w", err)
}

// mountOverlay mounts an overlay of lower with its upper and work
// directories in scratchDir, on scratchDir/root.
func mountOverlay(lower, scratchDir string) error {
	lower, err := filepath.EvalSymlinks(lower)
	if err != nil {
		return fmt.Errorf("overlay lower dir: %w", err)
	}
	if strings.ContainsAny(lower+scratchDir, ",:\\") {
		return fmt.Errorf("overlay: paths may not hold ',', ':' or '\\': %s, %s", lower, scratchDir)
	}
	dirs := map[string]string{}
	for _, d := range []string{scratchRoot, scratchUpper, scratchWork} {
		dirs[d] = filepath.Join(scratchDir, d)
		if err := os.Mkdir(dirs[d], 0o755); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
	}
	if err := copyOwner(lower, dirs[scratchUpper]); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, dirs[scratchUpper], dirs[scratchWork])
	if err := unix.Mount("overlay", dirs[scratchRoot], "overlay", 0, data); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", dirs[scratchRoot], err)
	}
	return nil
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

// Cleanup undoes Prepare: it brings moved interfaces back to the host,
// unmounts everything under scratchDir, deepest first, and removes it,
// then its parent and grandparent if they are left empty (the layout is
// <base>/<namespace>/<id>). A directory that does not exist is fine.
// Nothing is removed while a mount remains under it.
func Cleanup(scratchDir string) error {
	if _, err := os.Lstat(scratchDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	if err := returnNetDevices(scratchDir); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(scratchDir); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := os.RemoveAll(scratchDir); err != nil {
		errs = append(errs, fmt.Errorf("remove scratch %s: %w", scratchDir, err))
	}
	parent := filepath.Dir(scratchDir)
	if os.Remove(parent) == nil {
		_ = os.Remove(filepath.Dir(parent))
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount at or under dir, deepest first, and
// checks none is left.
func unmountUnder(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	list := func() ([]string, error) {
		infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			return nil, fmt.Errorf("list mounts under %s: %w", dir, err)
		}
		var points []string
		for _, m := range infos {
			points = append(points, m.Mountpoint)
		}
		slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
		return points, nil
	}
	points, err := list()
	if err != nil {
		return err
	}
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", p, err)
		}
	}
	if left, err := list(); err != nil || len(left) > 0 {
		return errors.Join(err, fmt.Errorf("unmount under %s: still mounted: %v", dir, left))
	}
	return nil
}
