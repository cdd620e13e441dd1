package supervisor

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// TaskLogs keeps each task's stdout and stderr in Dir/<id>.log. The task
// writes the file itself (O_APPEND), so its output never depends on the
// supervisor being alive; Rotate caps the size by copy-and-truncate,
// keeping Keep older files <id>.log.1 (newest) … <id>.log.<Keep>.
type TaskLogs struct {
	Dir      string
	MaxBytes int64
	Keep     int
}

// Path is the log file of a task.
func (l TaskLogs) Path(id string) string { return filepath.Join(l.Dir, id+".log") }

// Open opens a task's log for the task to write.
func (l TaskLogs) Open(id string) (*os.File, error) {
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log of %s: %w", id, err)
	}
	f, err := os.OpenFile(l.Path(id), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", id, err)
	}
	return f, nil
}

// Flush returns at once: a task writes its log file itself.
func (l TaskLogs) Flush(string) {}

// Rotate rotates a task's log once it has grown past MaxBytes.
func (l TaskLogs) Rotate(id string) error {
	path := l.Path(id)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= l.MaxBytes || l.MaxBytes <= 0 {
		return nil
	}
	keep := max(l.Keep, 1)
	_ = os.Remove(path + "." + strconv.Itoa(keep))
	for i := keep - 1; i >= 1; i-- {
		_ = os.Rename(path+"."+strconv.Itoa(i), path+"."+strconv.Itoa(i+1))
	}
	if err := copyFile(path, path+".1"); err != nil {
		return fmt.Errorf("rotate log of %s: %w", id, err)
	}
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("rotate log of %s: %w", id, err)
	}
	return nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
