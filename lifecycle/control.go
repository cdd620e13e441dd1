package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
)

// StopSignalAnnotation names the signal Stop sends first (an OCI image
// config's StopSignal); SIGTERM when absent.
const StopSignalAnnotation = "org.opencontainers.image.stopSignal"

// Signal sends sig to the task's anchor, or with all to every process of
// the task. The anchor is reached through a pidfd checked against its
// recorded start time: a reused PID is never signalled. As runc, all also
// reaches what is left in a stopped task's cgroup (containerd's shim
// sends kill --all 9 after the task's init exited).
func (s *Tasks) Signal(ref string, sig unix.Signal, all bool) error {
	allowed := []Status{Created, Running, Paused}
	if all {
		allowed = append(allowed, Stopped)
	}
	h, err := s.open(ref, "signal", unlocked, allowed...)
	if err != nil {
		return err
	}
	defer h.close()
	if all {
		return h.signalAll(sig)
	}
	if h.anchor == nil {
		return fmt.Errorf("signal task %s: %w", h.rec.ID, anchor.ErrGone)
	}
	if err := h.anchor.Signal(sig); err != nil {
		return fmt.Errorf("signal task %s: %w", h.rec.ID, err)
	}
	if sig == unix.SIGKILL && h.status == Paused {
		h.thaw()
	}
	return nil
}

// signalAll sends sig to every process in the task's cgroup, each through
// its own pidfd.
func (h *handle) signalAll(sig unix.Signal) error {
	pids, err := h.pids()
	if err != nil {
		return fmt.Errorf("signal all of task %s: %w", h.rec.ID, err)
	}
	var errs []error
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone since the cgroup was read
		}
		if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("signal pid %d: %w", pid, err))
		}
		unix.Close(fd)
	}
	if sig == unix.SIGKILL {
		h.thaw()
	}
	return errors.Join(errs...)
}

// Processes lists the host PIDs of every process of the task.
func (s *Tasks) Processes(ref string) ([]int, error) {
	h, err := s.open(ref, "list processes of", unlocked)
	if err != nil {
		return nil, err
	}
	defer h.close()
	pids, err := h.pids()
	if err != nil {
		return nil, fmt.Errorf("list processes of %s: %w", h.rec.ID, err)
	}
	return pids, nil
}

// Stop ends a task as the seed's Stop does: the stop signal (SIGTERM unless
// the task's stop-signal annotation says otherwise) to the anchor, up to
// timeout for it to exit, then SIGKILL to every process of the task, and it
// returns once all of them are gone. It takes no lock: a kill or a state
// may come while it waits.
func (s *Tasks) Stop(ctx context.Context, ref string, timeout time.Duration) error {
	h, err := s.open(ref, "stop", unlocked)
	if err != nil {
		return err
	}
	defer h.close()
	if h.status == Stopped || h.anchor == nil {
		return h.killRest(ctx)
	}
	if err := requireStatus("stop", h.rec.ID, h.status, Created, Running, Paused); err != nil {
		return err
	}
	sig := unix.SIGTERM
	if name := h.rec.Annotations[StopSignalAnnotation]; name != "" {
		if sig, err = ParseSignal(name); err != nil {
			return fmt.Errorf("stop task %s: annotation %s: %w", h.rec.ID, StopSignalAnnotation, err)
		}
	}
	if h.status == Paused {
		h.thaw()
	}
	if h.status != Created {
		if err := h.anchor.Signal(sig); err != nil && !errors.Is(err, anchor.ErrGone) {
			return fmt.Errorf("stop task %s: %w", h.rec.ID, err)
		}
		graceCtx, cancel := context.WithTimeout(ctx, timeout)
		err = h.anchor.Wait(graceCtx)
		cancel()
		if err == nil {
			s.log.Info("task stopped", "id", h.rec.ID, "signal", unix.SignalName(sig))
			return h.killRest(ctx)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stop task %s: %w", h.rec.ID, ctx.Err())
		}
		s.log.Info("task did not stop in time: killing", "id", h.rec.ID, "timeout", timeout)
	}
	return h.killRest(ctx)
}

// killAnchor kills the task's anchor and waits until it has exited.
func (h *handle) killAnchor(ctx context.Context) {
	if h.anchor == nil {
		return
	}
	_ = h.anchor.Signal(unix.SIGKILL)
	h.thaw() // a frozen anchor dies only once thawed
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = h.anchor.Wait(ctx)
}

// killRest SIGKILLs every process left in the task's cgroup and waits
// until the cgroup is empty. It fails when the cgroup cannot be read (so
// a caller never takes "cannot tell" for "nothing left") or when
// processes outlive the deadline.
func (h *handle) killRest(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		pids, err := h.pids()
		if err != nil {
			return fmt.Errorf("kill task %s: list its processes: %w", h.rec.ID, err)
		}
		if len(pids) == 0 {
			return nil
		}
		h.thawDelegated()
		if err := h.signalAll(unix.SIGKILL); err != nil {
			return fmt.Errorf("kill task %s: %w", h.rec.ID, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kill task %s: %d processes left: %w", h.rec.ID, len(pids), ctx.Err())
		case <-time.After(delay):
		}
	}
}

// Pause freezes every process of a running task.
func (s *Tasks) Pause(ref string) error {
	return s.freeze(ref, "pause", Running, Paused)
}

// Resume thaws a paused task.
func (s *Tasks) Resume(ref string) error {
	return s.freeze(ref, "resume", Paused, Running)
}

func (s *Tasks) freeze(ref, action string, from, to Status) error {
	h, err := s.open(ref, action, locked, from)
	if err != nil {
		return err
	}
	defer h.close()
	c, err := h.container()
	if err != nil {
		return fmt.Errorf("%s task %s: %w", action, h.rec.ID, err)
	}
	if to == Paused {
		err = c.Pause()
	} else {
		err = c.Resume()
	}
	if err != nil {
		return fmt.Errorf("%s task %s: %w", action, h.rec.ID, err)
	}
	h.noteStatus(action, to)
	return nil
}
