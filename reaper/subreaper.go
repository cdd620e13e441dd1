package reaper

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BecomeSubreaper makes sure the orphans of this process's descendants
// come to it: PID 1 (of the host or of a PID namespace) gets them already;
// any other process becomes a child subreaper (PR_SET_CHILD_SUBREAPER) and
// checks with PR_GET_CHILD_SUBREAPER that it is one.
func BecomeSubreaper() error {
	if os.Getpid() == 1 {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	on, err := IsSubreaper()
	if err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	if !on {
		return errors.New("become child subreaper: not set")
	}
	return nil
}

// IsSubreaper reports whether this process is a child subreaper.
func IsSubreaper() (bool, error) {
	var on int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&on)), 0, 0, 0); err != nil {
		return false, fmt.Errorf("read child subreaper: %w", err)
	}
	return on != 0, nil
}

// Own makes the process a child subreaper (checked) with a reaper of its
// own, whose orphans go to onOrphan; release reaps what is left, so that
// the process ends with no zombie of its, and closes the reaper.
func Own(onOrphan func(Reaped)) (rp *Reaper, release func(), err error) {
	if err := BecomeSubreaper(); err != nil {
		return nil, nil, err
	}
	rp = NewReaper()
	rp.OnOrphan(onOrphan)
	return rp, func() {
		rp.ReapNow()
		rp.Close()
	}, nil
}
