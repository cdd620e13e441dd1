package initramfs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// ErrExists is returned when a path is added twice (a directory added
// again with the same mode is fine).
var ErrExists = errors.New("path already in the archive")

// ErrBadPath is returned for an empty path, a path with a . or .. element,
// or a path under something that is not a directory.
var ErrBadPath = errors.New("bad archive path")

// DeviceKind says whether a device node is a character or block device.
type DeviceKind int

const (
	CharDevice  DeviceKind = iota // c
	BlockDevice                   // b
)

// entry is one member of the archive.
type entry struct {
	name         string // relative, no leading /
	mode         uint32 // file type bits and permissions, as in stat(2)
	data         []byte // file content or symlink target
	major, minor uint32 // rdev of a device node
}

// File type bits of cpio's mode field (the same as stat(2)'s).
const (
	typeDir     = 0o040000
	typeFile    = 0o100000
	typeSymlink = 0o120000
	typeChar    = 0o020000
	typeBlock   = 0o060000
)

// Archive is an initramfs being put together.
type Archive struct {
	entries []entry
	index   map[string]int // name → position in entries
}

// New returns an empty archive.
func New() *Archive { return &Archive{index: map[string]int{}} }

// clean turns an absolute or relative archive path into the archive's
// form (relative, no leading /) and checks it.
func clean(p string) (string, error) {
	rel := strings.TrimPrefix(p, "/")
	if rel == "" || rel != path.Clean(rel) || strings.HasPrefix(rel, "../") || rel == ".." || rel == "." {
		return "", fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	return rel, nil
}

// add puts e in the archive after its parents, making missing parents as
// directories 0755.
func (a *Archive) add(p string, e entry) error {
	name, err := clean(p)
	if err != nil {
		return err
	}
	if dir := path.Dir(name); dir != "." {
		if err := a.parent(dir); err != nil {
			return err
		}
	}
	if i, ok := a.index[name]; ok {
		old := a.entries[i]
		if old.mode&0o170000 == typeDir && e.mode == old.mode {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrExists, name)
	}
	e.name = name
	a.index[name] = len(a.entries)
	a.entries = append(a.entries, e)
	return nil
}

// parent makes sure dir is a directory of the archive.
func (a *Archive) parent(dir string) error {
	if i, ok := a.index[dir]; ok {
		if a.entries[i].mode&0o170000 != typeDir {
			return fmt.Errorf("%w: %s is not a directory", ErrBadPath, dir)
		}
		return nil
	}
	return a.add(dir, entry{mode: typeDir | 0o755})
}

// Dir adds a directory.
func (a *Archive) Dir(p string, perm fs.FileMode) error {
	return a.add(p, entry{mode: typeDir | uint32(perm.Perm())})
}

// File adds a regular file with the given content.
func (a *Archive) File(p string, perm fs.FileMode, data []byte) error {
	return a.add(p, entry{mode: typeFile | uint32(perm.Perm()), data: data})
}

// CopyFile adds the host file src at p with its permission bits.
func (a *Archive) CopyFile(p, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("add file %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("add file %s: not a regular file", src)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("add file %s: %w", src, err)
	}
	return a.File(p, fi.Mode().Perm(), b)
}

// Symlink adds a symbolic link to target.
func (a *Archive) Symlink(p, target string) error {
	if target == "" {
		return fmt.Errorf("%w: symlink %s has no target", ErrBadPath, p)
	}
	return a.add(p, entry{mode: typeSymlink | 0o777, data: []byte(target)})
}

// Device adds a device node.
func (a *Archive) Device(p string, perm fs.FileMode, kind DeviceKind, major, minor uint32) error {
	t := uint32(typeChar)
	if kind == BlockDevice {
		t = typeBlock
	}
	return a.add(p, entry{mode: t | uint32(perm.Perm()), major: major, minor: minor})
}

// Names lists the archive's paths in order, for tests and listings.
func (a *Archive) Names() []string {
	out := make([]string, len(a.entries))
	for i, e := range a.entries {
		out[i] = e.name
	}
	return out
}

// WriteCPIO writes the archive uncompressed, in the newc format, with its
// trailer.
func (a *Archive) WriteCPIO(w io.Writer) error {
	cw := &countWriter{w: w}
	for i, e := range a.entries {
		nlink := 1
		if e.mode&0o170000 == typeDir {
			nlink = 2
		}
		if err := writeEntry(cw, uint32(i+1), e, nlink); err != nil {
			return fmt.Errorf("write cpio: %w", err)
		}
	}
	if err := writeEntry(cw, 0, entry{name: "TRAILER!!!"}, 1); err != nil {
		return fmt.Errorf("write cpio: %w", err)
	}
	return nil
}

// Write writes the archive gzip'd, as the kernel and qemu take it.
func (a *Archive) Write(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := a.WriteCPIO(zw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

// countWriter counts what went through, for cpio's 4-byte padding.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countWriter) pad() error {
	if r := c.n % 4; r != 0 {
		_, err := c.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

// writeEntry writes one newc header, the name and the data, each padded
// to 4 bytes.
func writeEntry(w *countWriter, ino uint32, e entry, nlink int) error {
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.major, e.minor, len(e.name)+1, 0)
	if _, err := io.WriteString(w, hdr+e.name+"\x00"); err != nil {
		return err
	}
	if err := w.pad(); err != nil {
		return err
	}
	if _, err := w.Write(e.data); err != nil {
		return err
	}
	return w.pad()
}
