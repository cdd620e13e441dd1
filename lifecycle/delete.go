package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/rootfs"
)

// Delete removes a task: its cgroup, the parents moor made for it, its
// mounts and its state. A created, running or paused task is refused
// unless force, which kills it first (the runtime spec's rule; runc
// deletes a created task without force). It holds the task's lock
// throughout, so a late exit record (the reaper's) cannot write into the
// directory being removed.
func (s *Tasks) Delete(ctx context.Context, ref string, force bool) error {
	var allowed []Status
	if !force {
		allowed = []Status{Stopped, Creating}
	}
	h, err := s.open(ref, "delete", locked, allowed...)
	if force && errors.Is(err, ErrCorrupt) {
		return s.removeUnreadable(ref, err)
	}
	if errors.Is(err, ErrWrongStatus) {
		return fmt.Errorf("%w (stop it first, or delete --force)", err)
	}
	if err != nil {
		return err
	}
	defer h.close()
	rec := h.rec
	if h.status != Stopped {
		h.killAnchor(ctx)
	}
	if err := h.killRest(ctx); err != nil {
		return fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	if c, err := h.container(); err == nil {
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
