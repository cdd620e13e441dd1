package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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
		tmp := filepath.Join(dir, "."+name+"."+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "create temporary file for", Path: path, Err: fs.ErrExist}
}
