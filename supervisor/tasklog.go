package supervisor

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// TaskLogs says where each task's stdout and stderr are kept: Dir/<id>.log,
// at most MaxBytes long (no bound when 0), with Keep older files
// <id>.log.1 (newest) … <id>.log.<Keep> (at least one). LogFiles writes
// them.
type TaskLogs struct {
	Dir      string
	MaxBytes int64
	Keep     int
}

// Path is the log file of a task.
func (l TaskLogs) Path(id string) string { return filepath.Join(l.Dir, id+".log") }

// pipePath is the named pipe a task writes its output into.
func (l TaskLogs) pipePath(id string) string { return filepath.Join(l.Dir, "."+id+".pipe") }

func (l TaskLogs) keep() int { return max(l.Keep, 1) }

// old is the n-th older log of a task (1 is the newest).
func (l TaskLogs) old(id string, n int) string { return l.Path(id) + "." + strconv.Itoa(n) }

// shift makes room for a new <id>.log.1: the oldest kept log goes, the
// others move one up.
func (l TaskLogs) shift(id string) {
	_ = os.Remove(l.old(id, l.keep()))
	for i := l.keep() - 1; i >= 1; i-- {
		_ = os.Rename(l.old(id, i), l.old(id, i+1))
	}
}

// dropOldest removes the oldest older log of a task there is, and says
// whether there was one.
func (l TaskLogs) dropOldest(id string) bool {
	for i := l.keep(); i >= 1; i-- {
		if os.Remove(l.old(id, i)) == nil {
			return true
		}
	}
	return false
}

// truncateOversize caps the log of a task that writes the file itself (one
// an earlier moor started, before task output went through a pipe) by
// copy-and-truncate, once it has grown past MaxBytes. The log is truncated
// even when the copy fails (a full file system): the newest output wins
// over the oldest.
func (l TaskLogs) truncateOversize(id string) error {
	path := l.Path(id)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= l.MaxBytes || l.MaxBytes <= 0 {
		return nil
	}
	l.shift(id)
	copyErr := copyFile(path, l.old(id, 1))
	if copyErr != nil {
		_ = os.Remove(l.old(id, 1)) // a partial copy only holds space
	}
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("truncate log of %s: %w", id, err)
	}
	if copyErr != nil {
		return fmt.Errorf("rotate log of %s: truncated without a copy: %w", id, copyErr)
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
