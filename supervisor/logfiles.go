package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// PipeSize is the buffer of the pipe a task writes its output into: what
// it can write while no supervisor reads before its writes wait.
const PipeSize = 1 << 20

// readSize is the most read from a task's pipe at once.
const readSize = 64 << 10

// LogFiles keeps each task's output in its log file (TaskLogs), bounded
// whatever the task writes. A task writes into a named pipe,
// Dir/.<id>.pipe; a writer of the supervisor's reads it and appends to
// Dir/<id>.log, rotating by rename exactly at MaxBytes: a write that would
// cross the bound ends at the last line end that fits (a line longer than
// MaxBytes is cut) and the rest goes to a fresh file. So no log file is
// ever longer than MaxBytes, and a task's logs never take more than
// (Keep+1)×MaxBytes. When a write fails for want of space, the task's
// oldest output goes first (its oldest older log, then its current one),
// and only when it has nothing left is the new output dropped.
//
// The task's descriptor is opened read-write, so the pipe always has a
// reader: when no supervisor reads it (one died, the next is not up yet)
// the task's writes wait in the pipe (PipeSize, then the writer blocks)
// and never fail with EPIPE or SIGPIPE. The next supervisor opens the pipe
// by its name again (Rotate) and drains it. What a supervisor had read
// but not yet written when it died is lost: at most one read.
//
// Each pipe is read on a goroutine of its own, parked in the runtime's
// poller (not a thread), until every process of the task has closed it.
type LogFiles struct {
	logs TaskLogs
	// FlushTimeout bounds Flush; DefaultFlushTimeout when 0.
	FlushTimeout time.Duration

	mu      sync.Mutex
	writers map[string]*logWriter // id → the writer reading its pipe
}

// NewLogFiles keeps tasks' output as l says.
func NewLogFiles(l TaskLogs) *LogFiles {
	return &LogFiles{logs: l, writers: map[string]*logWriter{}}
}

// Open makes (or finds) the pipe of the task id, makes sure a writer reads
// it, and returns the task's end of it.
func (o *LogFiles) Open(id string) (*os.File, error) {
	pipe := o.logs.pipePath(id)
	if err := os.MkdirAll(o.logs.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log of %s: %w", id, err)
	}
	if err := unix.Mkfifo(pipe, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("open log of %s: %w", id, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	// Blocking, unlike a pipe os.OpenFile opens: the task writes to it.
	fd, err := unix.Open(pipe, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", id, err)
	}
	task := os.NewFile(uintptr(fd), pipe)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		task.Close()
		return nil, fmt.Errorf("open log of %s: %s is not a pipe", id, pipe)
	}
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, PipeSize) // the default (64KiB) when refused
	if w := o.writers[id]; w != nil {
		w.reopened = true // the writer of an earlier task goes on with this one
		return task, nil
	}
	if err := o.attach(id); err != nil {
		task.Close()
		return nil, err
	}
	return task, nil
}

// attach starts a writer on the pipe of the task id. o.mu is held.
func (o *LogFiles) attach(id string) error {
	pipe := o.logs.pipePath(id)
	fd, err := unix.Open(pipe, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open log pipe of %s: %w", id, err)
	}
	w := &logWriter{logs: o.logs, id: id, done: make(chan struct{})}
	o.writers[id] = w
	go o.copy(w, os.NewFile(uintptr(fd), pipe)) // non-blocking: read through the poller
	return nil
}

// reads are the buffers pipes are read into, taken only while a pipe has
// data: an idle service's writer holds none.
var reads = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// copy writes what comes through the pipe r to the log until every writer
// of the pipe has closed it and no task opened it again meanwhile. It
// waits in the runtime's poller with no buffer of its own.
func (o *LogFiles) copy(w *logWriter, r *os.File) {
	defer close(w.done)
	defer r.Close()
	defer w.close()
	o.note(w, w.open(0))
	rc, err := r.SyscallConn()
	if err != nil {
		o.note(w, err)
		return
	}
	for {
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			buf := reads.Get().(*[]byte)
			defer reads.Put(buf)
			n, err := unix.Read(int(fd), *buf)
			switch {
			case err == unix.EAGAIN:
				return false // wait in the poller
			case err != nil:
				rerr = err
			case n == 0:
				rerr = io.EOF
			default:
				o.note(w, w.write((*buf)[:n]))
			}
			return true
		})
		if err == nil && rerr == nil {
			continue
		}
		o.mu.Lock()
		if errors.Is(rerr, io.EOF) && w.reopened {
			w.reopened = false
			o.mu.Unlock()
			continue
		}
		delete(o.writers, w.id)
		o.mu.Unlock()
		return
	}
}

// note keeps the first error of a writer until Rotate reports it.
func (o *LogFiles) note(w *logWriter, err error) {
	if err == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// Rotate reports the first error writing the log of the task id since the
// last call. The log of a task whose pipe has no writer (one an earlier
// supervisor started) gets one; the log of a task that writes its file
// itself (one an earlier moor started) is capped by copy-and-truncate.
func (o *LogFiles) Rotate(id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w := o.writers[id]; w != nil {
		err := w.err
		w.err = nil
		return err
	}
	if _, err := os.Lstat(o.logs.pipePath(id)); err == nil {
		return o.attach(id) // a dead task's pipe gives EOF at once: its writer ends
	}
	return o.logs.truncateOversize(id)
}

// Flush waits, at most FlushTimeout, for the writer of the task id to
// write all the task wrote and end.
func (o *LogFiles) Flush(id string) {
	o.mu.Lock()
	w := o.writers[id]
	o.mu.Unlock()
	if w == nil {
		return
	}
	d := o.FlushTimeout
	if d == 0 {
		d = DefaultFlushTimeout
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	}
}

// logWriter appends what one task's pipe gives to its log. Only its copy
// goroutine touches f and size.
type logWriter struct {
	logs TaskLogs
	id   string
	f    *os.File // the current log; nil when it could not be opened
	size int64
	done chan struct{} // closed when the copy ends

	// Under LogFiles.mu:
	err      error // the first error not yet reported
	reopened bool  // a new task opened the pipe: EOF does not end the copy
}

// write appends p, rotating at MaxBytes. It returns the first error; what
// could not be written is dropped.
func (w *logWriter) write(p []byte) (first error) {
	note := func(err error) {
		if first == nil {
			first = err
		}
	}
	for len(p) > 0 {
		if w.f == nil {
			if err := w.open(0); err != nil {
				note(fmt.Errorf("%w: %d bytes dropped", err, len(p)))
				return first
			}
		}
		n := w.fits(p)
		if n == 0 {
			note(w.rotate())
			continue
		}
		k, err := w.f.Write(p[:n])
		w.size += int64(k)
		p = p[k:]
		if err != nil {
			if !errors.Is(err, unix.ENOSPC) || !w.makeRoom() {
				note(fmt.Errorf("write log of %s: %d bytes dropped: %w", w.id, len(p), err))
				return first
			}
			continue
		}
		if w.logs.MaxBytes > 0 && w.size >= w.logs.MaxBytes {
			note(w.rotate())
		}
	}
	return first
}

// fits is how much of p goes into the current log: all of it when it
// fits; else up to its last line end that fits; else, in an empty log, as
// much as fits (a line longer than MaxBytes is cut); else nothing.
func (w *logWriter) fits(p []byte) int {
	room := w.logs.MaxBytes - w.size
	switch {
	case w.logs.MaxBytes <= 0 || int64(len(p)) <= room:
		return len(p)
	case room <= 0:
		return 0
	}
	if i := bytes.LastIndexByte(p[:room], '\n'); i >= 0 {
		return i + 1
	}
	if w.size == 0 {
		return int(room)
	}
	return 0
}

// open opens the current log for appending, with flag added.
func (w *logWriter) open(flag int) error {
	w.close()
	f, err := os.OpenFile(w.logs.Path(w.id), os.O_WRONLY|os.O_CREATE|os.O_APPEND|flag, 0o640)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", w.id, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log of %s: %w", w.id, err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// rotate renames the current log to <id>.log.1 (the older ones moving up)
// and starts an empty one. Renames need no space, so this works on a full
// file system; when the rename fails all the same, the current log is
// emptied.
func (w *logWriter) rotate() error {
	w.close()
	w.logs.shift(w.id)
	err := os.Rename(w.logs.Path(w.id), w.logs.old(w.id, 1))
	if oerr := w.open(os.O_TRUNC); oerr != nil {
		return oerr
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate log of %s: %w", w.id, err)
	}
	return nil
}

// makeRoom frees space for newer output when the file system is full:
// the task's oldest older log goes, or else its current log is emptied.
// It says whether anything was freed.
func (w *logWriter) makeRoom() bool {
	if w.logs.dropOldest(w.id) {
		return true
	}
	if w.size == 0 || w.f.Truncate(0) != nil {
		return false
	}
	w.size = 0
	return true
}

func (w *logWriter) close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}
