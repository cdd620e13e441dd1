package reaper

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// MemFile is an anonymous file in memory (memfd), for a child's stdin or
// output where a buffer would do: Start takes files only. Unlike a pipe,
// it never blocks the child, nor waits for a daemon it leaves behind to
// close it.
func MemFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// ReadAll reads f from its start: what a child wrote to a MemFile.
func ReadAll(f *os.File) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return b, nil
}
