package lifecycle

import (
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/lf-edge/moor/anchor"
)

// handle is one operation's hold on a task: the reference resolved once,
// the record and the container loaded once, the anchor's identity checked
// once (through the pidfd it keeps open), and the status guarded. An
// operation that changes the task holds the task's lock for its whole
// length; one that only reads or signals does not, so that a slow stop
// never blocks a state or a kill.
type handle struct {
	t      *Tasks
	rec    *Record
	status Status
	anchor *anchor.Handle // nil when the anchor is gone (or not yet made)
	c      Container      // loaded on first use
	unlock func()
}

// lockMode says whether an operation takes the task's lock.
type lockMode bool

const (
	locked   lockMode = true
	unlocked lockMode = false
)

// open resolves ref, takes the task's lock when mode says so, loads its
// record, observes its status and guards it: the action is refused, with
// ErrWrongStatus, unless the status is one of allowed (any, when none is
// given). Close the handle when done.
func (s *Tasks) open(ref, action string, mode lockMode, allowed ...Status) (*handle, error) {
	h := &handle{t: s, unlock: func() {}}
	id, rec, err := s.resolveID(ref)
	if err != nil {
		return nil, fmt.Errorf("%s task: %w", action, err)
	}
	if mode == locked {
		h.unlock, err = s.store.Lock(s.opts.Namespace, id)
		if errors.Is(err, ErrNotExist) { // libcontainer's state alone: rebuild the record
			if _, err = s.loadRecord(id); err == nil {
				h.unlock, err = s.store.Lock(s.opts.Namespace, id)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s task: %w", action, err)
		}
		rec = nil // read it again under the lock
	}
	if rec == nil {
		if rec, err = s.loadRecord(id); err != nil {
			h.unlock()
			return nil, fmt.Errorf("%s task: %w", action, err)
		}
	}
	h.rec = rec
	h.observe()
	if len(allowed) > 0 {
		if err := requireStatus(action, rec.ID, h.status, allowed...); err != nil {
			h.close()
			return nil, err
		}
	}
	return h, nil
}

// close releases the pidfd and the lock.
func (h *handle) close() {
	if h.anchor != nil {
		h.anchor.Close()
	}
	h.unlock()
}

// observe finds the task's status from the record and from the kernel: the
// record alone may be stale, since the anchor can die with nobody watching.
func (h *handle) observe() {
	rec := h.rec
	switch {
	case rec.Status == Deleting:
		h.status = Deleting
		if a, err := rec.Anchor.Open(h.t.opts.ProcRoot); err == nil {
			h.anchor = a // for the delete that finishes it
		}
		return
	case rec.Status == Stopped || rec.Exit != nil:
		h.status = Stopped
		return
	case rec.Status == Creating && rec.Anchor.PID == 0:
		h.status = Creating
		return
	}
	a, err := rec.Anchor.Open(h.t.opts.ProcRoot)
	if err != nil {
		h.status = Stopped // gone, or its PID is another process's now
		return
	}
	h.anchor = a
	c, err := h.container()
	if err != nil {
		h.status = rec.Status
		return
	}
	st, err := c.Status()
	if err != nil {
		h.status = rec.Status
		return
	}
	h.status = statusOf(st)
	if h.status == Created && !c.Waiting(rec.Anchor.PID) {
		h.status = Running // a start cut short after it let the anchor go
	}
}

// statusOf maps libcontainer's status to the lifecycle's.
func statusOf(st libcontainer.Status) Status {
	switch st {
	case libcontainer.Created:
		return Created
	case libcontainer.Running:
		return Running
	case libcontainer.Paused:
		return Paused
	default:
		return Stopped
	}
}

// container is the task's container: the one this Tasks holds for it, or
// loaded on first use.
func (h *handle) container() (Container, error) {
	if h.c == nil {
		h.c = h.t.heldContainer(h.rec)
	}
	if h.c == nil {
		c, err := h.t.loadContainer(h.rec.Namespace, h.rec.ID)
		if err != nil {
			return nil, err
		}
		h.c = c
	}
	return h.c, nil
}

// loadContainer loads a task's container once its state directory is
// checked (Store.CheckContainer): libcontainer is never let at a symlink,
// nor at another container's state.
func (s *Tasks) loadContainer(namespace, id string) (Container, error) {
	if err := s.store.CheckContainer(namespace, id); err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	c, err := s.opts.Runtime.Load(s.store.NamespaceDir(namespace), id)
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	return c, nil
}

// setStatus moves the task's recorded status through the transition
// function and saves it. It needs the task's lock: the handle's record is
// the one on disk.
func (h *handle) setStatus(to Status) error {
	if h.rec.Status == to {
		return nil
	}
	next, err := transition(h.rec.Status, to)
	if err != nil {
		return fmt.Errorf("task %s: %w", h.rec.ID, err)
	}
	h.rec.Status = next
	return h.t.store.Save(h.rec)
}

// noteStatus records a status the task has already reached (the change
// is made and is not undone): a failure to save it is a warning, not the
// verb's failure, and observe still reads the status from the kernel.
func (h *handle) noteStatus(action string, to Status) {
	if err := h.setStatus(to); err != nil {
		h.t.log.Warn(action+" task: done, but its record could not be saved; state reads the kernel", "id", h.rec.ID, "status", to, "err", err)
	}
}

// thaw lets a frozen task receive a SIGKILL that is waiting for it.
func (h *handle) thaw() {
	h.thawDelegated()
	c, err := h.container()
	if err != nil {
		return
	}
	if st, _ := c.Status(); st == libcontainer.Paused {
		_ = c.Resume()
	}
}

// pids lists the processes in the task's cgroup; none when the task's
// container or cgroup is gone.
func (h *handle) pids() ([]int, error) {
	c, err := h.container()
	if errors.Is(err, libcontainer.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pids, err := c.Processes()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return pids, err
}
