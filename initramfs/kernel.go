package initramfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoRelease is returned when a kernel image does not say its release.
var ErrNoRelease = errors.New("kernel release unknown")

// KernelRelease is the release of the kernel image at path
// ("6.1.0-57-amd64"), which names its module directory: read from an
// x86 bzImage's setup header, else taken from a file name of the form
// vmlinuz-<release> (Debian's, on every architecture).
func KernelRelease(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read kernel release: %w", err)
	}
	defer f.Close()
	if rel, err := BzImageRelease(f); err == nil {
		return rel, nil
	}
	if rel, ok := strings.CutPrefix(filepath.Base(path), "vmlinuz-"); ok && rel != "" {
		return rel, nil
	}
	return "", fmt.Errorf("read kernel release of %s: %w", path, ErrNoRelease)
}

// BzImageRelease reads the release from an x86 bzImage: the setup
// header's magic "HdrS" at 0x202 and, at 0x20e, the offset (from 0x200)
// of the version string, whose first word is the release.
func BzImageRelease(r io.ReaderAt) (string, error) {
	hdr := make([]byte, 0x210)
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return "", fmt.Errorf("read bzImage header: %w", err)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("read bzImage header: %w: no HdrS magic", ErrNoRelease)
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20e:])) + 0x200
	buf := make([]byte, 256)
	n, err := r.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read bzImage version: %w", err)
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	f := strings.Fields(string(buf))
	if len(f) == 0 {
		return "", fmt.Errorf("read bzImage version: %w: empty", ErrNoRelease)
	}
	return f[0], nil
}
