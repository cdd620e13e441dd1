package lifecycle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/atomicfile"
)

// ErrUnsafePath means a path under the state root is a symlink, or not a
// directory where a directory belongs, or a mount in a tree being removed:
// the store never follows, writes through or removes through one.
var ErrUnsafePath = errors.New("refused in the state root")

// beneath is how every path under the state root is resolved: inside the
// root, through no symlink (the last element included) and no magic link.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openAt opens rel, a slash-separated path below dir, resolved beneath it
// (mounts too are refused with noXdev), and names what it refuses.
func openAt(dir *os.File, rel string, flags int, resolve uint64) (*os.File, error) {
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: resolve,
	})
	full := filepath.Join(dir.Name(), rel)
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), full), nil
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("%w: %s", ErrUnsafePath, culprit(dir.Name(), rel, "a symlink"))
	case errors.Is(err, unix.ENOTDIR):
		return nil, fmt.Errorf("%w: %s", ErrUnsafePath, culprit(dir.Name(), rel, "not a directory"))
	case errors.Is(err, unix.EXDEV):
		return nil, fmt.Errorf("%s: %w: a mount point, never removed through", full, ErrUnsafePath)
	}
	return nil, &os.PathError{Op: "open", Path: full, Err: err}
}

// culprit names the first element of rel below dir that is a symlink or
// not a directory.
func culprit(dir, rel, what string) string {
	p := dir
	for el := range strings.SplitSeq(rel, "/") {
		p = filepath.Join(p, el)
		fi, err := os.Lstat(p)
		if err != nil {
			break
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return p + " is a symlink, never followed"
		}
		if !fi.IsDir() {
			return p + " is not a directory"
		}
	}
	return fmt.Sprintf("%s: %s on the way", filepath.Join(dir, rel), what)
}

// root opens the state root itself (a symlink there is the operator's
// choice and is followed) for resolving paths beneath it.
func (s Store) root() (*os.File, error) {
	fd, err := unix.Open(s.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open state root", Path: s.Root, Err: err}
	}
	return os.NewFile(uintptr(fd), s.Root), nil
}

// open opens rel beneath the state root.
func (s Store) open(rel string, flags int) (*os.File, error) {
	root, err := s.root()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return openAt(root, rel, flags, beneath)
}

// openDir opens the directory rel beneath the state root.
func (s Store) openDir(rel string) (*os.File, error) {
	return s.open(rel, unix.O_RDONLY|unix.O_DIRECTORY)
}

// exists reports whether rel is there, whatever it is (a symlink
// included: it takes the name, and using it gives ErrUnsafePath).
func (s Store) exists(rel string) (bool, error) {
	var st unix.Stat_t
	root, err := s.root()
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // no root yet: nothing in it
	}
	if err != nil {
		return false, err
	}
	defer root.Close()
	dir, base := path.Split(rel)
	if dir != "" {
		d, err := openAt(root, path.Clean(dir), unix.O_PATH|unix.O_DIRECTORY, beneath)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		defer d.Close()
		root = d
	}
	err = unix.Fstatat(int(root.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "stat", Path: filepath.Join(s.Root, rel), Err: err}
	}
	return true, nil
}

// readFile reads the regular file rel beneath the state root.
func (s Store) readFile(rel string) ([]byte, error) {
	f, err := s.open(rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRegular(f)
}

// readRegular reads f, which must be a regular file.
func readRegular(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", f.Name(), ErrUnsafePath)
	}
	return io.ReadAll(f)
}

// writeIn writes the file name in the directory rel beneath the state root.
func (s Store) writeIn(rel, name string, b []byte) error {
	d, err := s.openDir(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return atomicfile.WriteAt(d, name, b, 0o600)
}

// mkdirAll makes the directories of rel beneath the state root (0700)
// and opens the last; an element that is there and is not a directory
// (a symlink included) is refused.
func (s Store) mkdirAll(rel string) (*os.File, error) {
	if err := os.MkdirAll(s.Root, 0o700); err != nil {
		return nil, fmt.Errorf("make state root: %w", err)
	}
	dir, err := s.root()
	if err != nil {
		return nil, err
	}
	for el := range strings.SplitSeq(rel, "/") {
		if err := unix.Mkdirat(int(dir.Fd()), el, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			dir.Close()
			return nil, &os.PathError{Op: "mkdir", Path: filepath.Join(dir.Name(), el), Err: err}
		}
		next, err := openAt(dir, el, unix.O_RDONLY|unix.O_DIRECTORY, beneath)
		dir.Close()
		if err != nil {
			return nil, err
		}
		dir = next
	}
	return dir, nil
}

// removeAll removes rel beneath the state root and all below it,
// crossing no symlink (one below rel is removed itself, never what it
// points at; rel itself a symlink is refused) and no mount (refused).
func (s Store) removeAll(rel string) error {
	parent, base := path.Split(rel)
	var d *os.File
	var err error
	if parent == "" {
		d, err = s.root()
	} else {
		d, err = s.open(path.Clean(parent), unix.O_PATH|unix.O_DIRECTORY)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(d.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		full := filepath.Join(s.Root, rel)
		return fmt.Errorf("%s: %w: %s is a symlink, never removed through", full, ErrUnsafePath, full)
	}
	return removeAt(d, base)
}

// removeAt removes name in dir and all below it, as removeAll.
func removeAt(dir *os.File, name string) error {
	err := unix.Unlinkat(int(dir.Fd()), name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return &os.PathError{Op: "remove", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	sub, err := openAt(dir, name, unix.O_RDONLY|unix.O_DIRECTORY, beneath|unix.RESOLVE_NO_XDEV)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := sub.Readdirnames(-1)
	for _, n := range names {
		if err == nil {
			err = removeAt(sub, n)
		}
	}
	sub.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(int(dir.Fd()), name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "remove", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	return nil
}

// removeEmpty removes the directory rel beneath the state root if it is
// empty.
func (s Store) removeEmpty(rel string) {
	parent, base := path.Split(rel)
	d, err := s.open(path.Clean(parent), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return
	}
	defer d.Close()
	_ = unix.Unlinkat(int(d.Fd()), base, unix.AT_REMOVEDIR)
}
