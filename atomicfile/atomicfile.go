package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Write replaces path with b through a temporary file beside it, made
// with perm (less the umask), and a rename. Nothing is left behind on
// failure. The errors are the file system's, naming the file.
func Write(path string, b []byte, perm fs.FileMode) error {
	f, err := tempFile(path, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Create makes path, with perm (less the umask), holding what r reads,
// unless path exists: then the error wraps fs.ErrExist and path is left
// as it is. The content is synced to disk before it is hard-linked into
// place, so a crash leaves either no file or the whole one.
func Create(path string, r io.Reader, perm fs.FileMode) error {
	f, err := tempFile(path, perm)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}

// tempFile makes a new file ".<name>.<random>" beside path.
func tempFile(path string, perm fs.FileMode) (*os.File, error) {
	dir, name := filepath.Split(path)
	for range 100 {
		tmp := filepath.Join(dir, tempName(name))
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "create temporary file for", Path: path, Err: fs.ErrExist}
}

// tempName is a temporary name beside name.
func tempName(name string) string {
	return "." + name + "." + strconv.FormatUint(uint64(rand.Uint32()), 10)
}

// WriteAt replaces the file name of the directory dir with b, as Write
// does, through dir's descriptor: the temporary file is made with
// O_NOFOLLOW and perm, and renamed within dir, so no path above dir is
// looked up again.
func WriteAt(dir *os.File, name string, b []byte, perm fs.FileMode) error {
	var tmp string
	fd := -1
	for i := 0; fd < 0; i++ {
		if i == 100 {
			return &fs.PathError{Op: "create temporary file for", Path: filepath.Join(dir.Name(), name), Err: fs.ErrExist}
		}
		tmp = tempName(name)
		var err error
		fd, err = unix.Openat(int(dir.Fd()), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return &fs.PathError{Op: "create", Path: filepath.Join(dir.Name(), tmp), Err: err}
		}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), tmp))
	_, err := f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = unix.Renameat(int(dir.Fd()), tmp, int(dir.Fd()), name); err != nil {
			err = &fs.PathError{Op: "rename", Path: filepath.Join(dir.Name(), name), Err: err}
		}
	}
	if err != nil {
		_ = unix.Unlinkat(int(dir.Fd()), tmp, 0)
	}
	return err
}

// Sweep removes the temporary files that writers of path left beside it
// when they were killed between making one and renaming it. Call it
// where no other writer of path can be at work: as its one writer, when
// it starts, or under the lock its writers share.
func Sweep(path string) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sweep temporary files of %s: %w", path, err)
	}
	defer d.Close()
	return SweepAt(d, name)
}

// SweepAt is Sweep for the file name of the directory dir, through dir's
// descriptor (whose read offset it leaves alone).
func SweepAt(dir *os.File, name string) error {
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir.Name(), Err: err}
	}
	d := os.NewFile(uintptr(fd), dir.Name())
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if !isTemp(n, name) {
			continue
		}
		if err := unix.Unlinkat(fd, n, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return &fs.PathError{Op: "remove", Path: filepath.Join(dir.Name(), n), Err: err}
		}
	}
	return nil
}

// isTemp reports whether n is one of tempName's names for name.
func isTemp(n, name string) bool {
	rest, ok := strings.CutPrefix(n, "."+name+".")
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(rest, 10, 32)
	return err == nil
}
