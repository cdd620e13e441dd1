package anchor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/procfs"
)

// ErrGone means the anchor has exited, or its PID now belongs to another
// process. It is procfs.ErrGone, so a reader's "no such process" and a
// check's "not the recorded process" are one error to callers.
var ErrGone = procfs.ErrGone

// Identity names one process for its whole life: a PID alone can be reused,
// a PID with its start time cannot.
type Identity struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
}

// Capture records the identity of a live process.
func Capture(procRoot string, pid int) (Identity, error) {
	st, err := procfs.ReadStat(procRoot, pid)
	if err != nil {
		return Identity{}, fmt.Errorf("capture anchor identity: %w", err)
	}
	return Identity{PID: pid, StartTime: st.StartTime}, nil
}

// Check reports whether the process is still the one recorded and has not
// exited. It returns ErrGone (wrapped) when the process has exited, is a
// zombie, or its PID was reused.
func (id Identity) Check(procRoot string) error {
	if id.PID <= 0 {
		return fmt.Errorf("check pid %d: %w", id.PID, ErrGone)
	}
	st, err := procfs.ReadStat(procRoot, id.PID)
	if err != nil {
		return err
	}
	if st.StartTime != id.StartTime {
		return fmt.Errorf("check pid %d: start time %d, recorded %d: %w", id.PID, st.StartTime, id.StartTime, ErrGone)
	}
	if st.Exited() {
		return fmt.Errorf("check pid %d: exited: %w", id.PID, ErrGone)
	}
	return nil
}

// Handle is an open pidfd on a verified anchor.
type Handle struct {
	id Identity
	fd int
}

// Open opens a pidfd on the anchor and then verifies the start time, so
// the descriptor is known to refer to the recorded process and no other:
// once opened, a pidfd cannot be redirected by PID reuse.
func (id Identity) Open(procRoot string) (*Handle, error) {
	if id.PID <= 0 {
		return nil, fmt.Errorf("open pidfd of pid %d: %w", id.PID, ErrGone)
	}
	fd, err := unix.PidfdOpen(id.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("open pidfd of pid %d: %w", id.PID, ErrGone)
		}
		return nil, fmt.Errorf("open pidfd of pid %d: %w", id.PID, err)
	}
	if err := id.Check(procRoot); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Handle{id: id, fd: fd}, nil
}

// Identity returns the identity the handle was opened for.
func (h *Handle) Identity() Identity { return h.id }

// Fd returns the pidfd. It stays owned by the handle.
func (h *Handle) Fd() int { return h.fd }

// Signal sends sig to the anchor through its pidfd.
func (h *Handle) Signal(sig unix.Signal) error {
	if err := unix.PidfdSendSignal(h.fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal pid %d with %v: %w", h.id.PID, sig, ErrGone)
		}
		return fmt.Errorf("signal pid %d with %v: %w", h.id.PID, sig, err)
	}
	return nil
}

// Exited reports without blocking whether the anchor has exited (a pidfd
// becomes readable when its process exits, zombie or not).
func (h *Handle) Exited() (bool, error) {
	fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return false, fmt.Errorf("poll pidfd of pid %d: %w", h.id.PID, err)
	}
	return n > 0, nil
}

// Wait blocks until the anchor exits or ctx is done. It works for any
// process, not only children, reaps nothing, and parks no OS thread: the
// pidfd is waited on through Go's network poller.
func (h *Handle) Wait(ctx context.Context) error {
	dup, err := unix.FcntlInt(uintptr(h.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dup pidfd of pid %d: %w", h.id.PID, err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return fmt.Errorf("set pidfd of pid %d non-blocking: %w", h.id.PID, err)
	}
	f := os.NewFile(uintptr(dup), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("wait for pid %d: %w", h.id.PID, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var pollErr error
	err = rc.Read(func(uintptr) bool {
		var exited bool
		exited, pollErr = h.Exited()
		return exited || pollErr != nil
	})
	switch {
	case pollErr != nil:
		return pollErr
	case ctx.Err() != nil:
		return fmt.Errorf("wait for pid %d: %w", h.id.PID, ctx.Err())
	case err != nil:
		return fmt.Errorf("wait for pid %d: %w", h.id.PID, err)
	}
	return nil
}

// Close releases the pidfd.
func (h *Handle) Close() error { return unix.Close(h.fd) }
