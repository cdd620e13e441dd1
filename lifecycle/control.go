package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/rootfs"
)

// StopSignalAnnotation names the signal Stop sends first (an OCI image
// config's StopSignal); SIGTERM when absent.
const StopSignalAnnotation = "org.opencontainers.image.stopSignal"

// Signal sends sig to the task's anchor, or with all to every process of
// the task. The anchor is reached through a pidfd checked against its
// recorded start time: a reused PID is never signalled.
func (s *Tasks) Signal(ref string, sig unix.Signal, all bool) error {
	rec, err := s.Resolve(ref)
	if err != nil {
		return fmt.Errorf("signal task: %w", err)
	}
	st := s.observe(rec)
	if all {
		// As runc: whatever is left in a stopped task's cgroup can be
		// signalled too (containerd's shim sends kill --all 9 after the
		// task's init exited).
		if err := requireStatus("signal", rec.ID, st, Created, Running, Paused, Stopped); err != nil {
			return err
		}
		return s.signalAll(rec, sig)
	}
	if err := requireStatus("signal", rec.ID, st, Created, Running, Paused); err != nil {
		return err
	}
	h, err := rec.Anchor.Open(s.opts.ProcRoot)
	if err != nil {
		return fmt.Errorf("signal task %s: %w", rec.ID, err)
	}
	defer h.Close()
	if err := h.Signal(sig); err != nil {
		return fmt.Errorf("signal task %s: %w", rec.ID, err)
	}
	if sig == unix.SIGKILL && st == Paused {
		s.thaw(rec)
	}
	return nil
}

// signalAll sends sig to every process in the task's cgroup, each through
// its own pidfd.
func (s *Tasks) signalAll(rec *Record, sig unix.Signal) error {
	pids, err := s.pids(rec)
	if err != nil {
		if rec.Status == Stopped || rec.Exit != nil || errors.Is(err, os.ErrNotExist) {
			return nil // nothing is left of a stopped task
		}
		return fmt.Errorf("signal all of task %s: %w", rec.ID, err)
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
		s.thaw(rec)
	}
	return errors.Join(errs...)
}

// thaw lets a frozen task receive a SIGKILL that is waiting for it.
func (s *Tasks) thaw(rec *Record) {
	if c, err := s.load(rec); err == nil {
		if st, _ := c.Status(); st == libcontainer.Paused {
			_ = c.Resume()
		}
	}
}

// pids lists the processes in the task's cgroup.
func (s *Tasks) pids(rec *Record) ([]int, error) {
	c, err := s.load(rec)
	if err != nil {
		return nil, err
	}
	return c.Processes()
}

// Processes lists the host PIDs of every process of the task.
func (s *Tasks) Processes(ref string) ([]int, error) {
	rec, err := s.Resolve(ref)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	pids, err := s.pids(rec)
	if err != nil {
		return nil, fmt.Errorf("list processes of %s: %w", rec.ID, err)
	}
	return pids, nil
}

// Stop ends a task as the seed's Stop does: the stop signal (SIGTERM unless
// the task's stop-signal annotation says otherwise) to the anchor, up to
// timeout for it to exit, then SIGKILL to every process of the task, and it
// returns once all of them are gone.
func (s *Tasks) Stop(ctx context.Context, ref string, timeout time.Duration) error {
	rec, err := s.Resolve(ref)
	if err != nil {
		return fmt.Errorf("stop task: %w", err)
	}
	st := s.observe(rec)
	if st == Stopped {
		return s.killRest(ctx, rec)
	}
	if err := requireStatus("stop", rec.ID, st, Created, Running, Paused); err != nil {
		return err
	}
	sig := unix.SIGTERM
	if name := rec.Annotations[StopSignalAnnotation]; name != "" {
		if sig, err = ParseSignal(name); err != nil {
			return fmt.Errorf("stop task %s: annotation %s: %w", rec.ID, StopSignalAnnotation, err)
		}
	}
	h, err := rec.Anchor.Open(s.opts.ProcRoot)
	if errors.Is(err, anchor.ErrGone) {
		return s.killRest(ctx, rec)
	}
	if err != nil {
		return fmt.Errorf("stop task %s: %w", rec.ID, err)
	}
	defer h.Close()
	if st == Paused {
		s.thaw(rec)
	}
	if st != Created {
		if err := h.Signal(sig); err != nil && !errors.Is(err, anchor.ErrGone) {
			return fmt.Errorf("stop task %s: %w", rec.ID, err)
		}
		graceCtx, cancel := context.WithTimeout(ctx, timeout)
		err = h.Wait(graceCtx)
		cancel()
		if err == nil {
			s.log.Info("task stopped", "id", rec.ID, "signal", unix.SignalName(sig))
			return s.killRest(ctx, rec)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stop task %s: %w", rec.ID, ctx.Err())
		}
		s.log.Info("task did not stop in time: killing", "id", rec.ID, "timeout", timeout)
	}
	return s.killRest(ctx, rec)
}

// killRest SIGKILLs every process left in the task's cgroup and waits
// until the cgroup is empty.
func (s *Tasks) killRest(ctx context.Context, rec *Record) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		pids, err := s.pids(rec)
		if err != nil || len(pids) == 0 {
			return nil // no cgroup, or nothing left in it
		}
		if err := s.signalAll(rec, unix.SIGKILL); err != nil {
			return fmt.Errorf("kill task %s: %w", rec.ID, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kill task %s: %d processes left: %w", rec.ID, len(pids), ctx.Err())
		case <-time.After(delay):
		}
	}
}

// Delete removes a task: its cgroup, the parents moor made for it, its
// mounts and its state. A created, running or paused task is refused
// unless force, which kills it first (the runtime spec's rule; runc
// deletes a created task without force).
func (s *Tasks) Delete(ctx context.Context, ref string, force bool) error {
	rec, err := s.Resolve(ref)
	if force && errors.Is(err, ErrCorrupt) {
		return s.removeUnreadable(ref, err)
	}
	if err != nil {
		return fmt.Errorf("delete task: %w", err)
	}
	st := s.observe(rec)
	if !force {
		if err := requireStatus("delete", rec.ID, st, Stopped, Creating); err != nil {
			return fmt.Errorf("%w (stop it first, or delete --force)", err)
		}
	}
	if st != Stopped {
		s.killAnchor(ctx, rec)
	}
	if err := s.killRest(ctx, rec); err != nil {
		return fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	// Hold the task's lock while its state goes, so a late exit record
	// (the reaper's) cannot write into the directory being removed.
	unlock, err := s.store.Lock(rec.Namespace, rec.ID)
	if err != nil {
		return fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	defer unlock()
	if c, err := s.load(rec); err == nil {
		if err := c.Destroy(); err != nil {
			return fmt.Errorf("delete task %s: %w", rec.ID, err)
		}
	} else if err := s.destroyCgroup(rec); err != nil {
		return fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	s.removeCgroupParents(rec)
	if err := rootfs.Cleanup(s.store.ScratchDir(rec.Namespace, rec.ID)); err != nil {
		return fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	if s.opts.Reaper != nil {
		s.opts.Reaper.Unwatch(rec.Anchor.PID)
	}
	s.mu.Lock()
	delete(s.exited, rec.ID)
	s.mu.Unlock()
	if err := s.store.Remove(rec.Namespace, rec.ID); err != nil {
		return fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	if rec.Hooks != nil {
		if err := runHooks(rec.Hooks.Poststop, rec, specs.StateStopped, 0); err != nil {
			s.log.Warn("poststop hook failed", "id", rec.ID, "err", err)
		}
	}
	s.log.Info("task deleted", "id", rec.ID)
	return nil
}

// removeCgroupParents removes the parent cgroups moor made for the task,
// those that are empty.
func (s *Tasks) removeCgroupParents(rec *Record) {
	cgroup.RemoveEmpty(s.hierarchies(), rec.CgroupParents)
	cgroup.RemoveEmptyDirs(rec.CgroupParentDirs)
}

// destroyCgroup removes the cgroup of a task whose libcontainer state is
// missing (a create that died half-way).
func (s *Tasks) destroyCgroup(rec *Record) error {
	if rec.CgroupPath == "" {
		return nil
	}
	m, err := manager.New(&cgroups.Cgroup{Path: rec.CgroupPath, Resources: &cgroups.Resources{}, Systemd: s.opts.SystemdCgroup})
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", rec.CgroupPath, err)
	}
	if err := m.Destroy(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", rec.CgroupPath, err)
	}
	return nil
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
	rec, err := s.Resolve(ref)
	if err != nil {
		return fmt.Errorf("%s task: %w", action, err)
	}
	st, c := s.inspect(rec)
	if err := requireStatus(action, rec.ID, st, from); err != nil {
		return err
	}
	c, err = s.loaded(rec, c)
	if err != nil {
		return fmt.Errorf("%s task %s: %w", action, rec.ID, err)
	}
	if to == Paused {
		err = c.Pause()
	} else {
		err = c.Resume()
	}
	if err != nil {
		return fmt.Errorf("%s task %s: %w", action, rec.ID, err)
	}
	if err := s.setStatus(rec, to); err != nil {
		return fmt.Errorf("%s task %s: %w", action, rec.ID, err)
	}
	return nil
}

// removeUnreadable removes the state of a task whose record and
// libcontainer state both cannot be read: with nothing to say which
// processes and cgroup were the task's, only its directories go, so that
// its name is free again.
func (s *Tasks) removeUnreadable(id string, cause error) error {
	if err := rootfs.Cleanup(s.store.ScratchDir(s.opts.Namespace, id)); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	if err := s.store.Remove(s.opts.Namespace, id); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	s.log.Warn("deleted a task whose state could not be read; its processes and cgroup, if any, were not known", "id", id, "err", cause)
	return nil
}
