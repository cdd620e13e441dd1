package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"

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
		allowed = []Status{Stopped, Creating, Deleting}
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
	// Deleting is recorded first: a delete cut short leaves a task that
	// state and list show as deleting and that delete finishes.
	if rec.Status != Deleting {
		if err := h.setStatus(Deleting); err != nil {
			return fmt.Errorf("delete task %s: %w", rec.ID, err)
		}
	}
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
	} else {
		// No container to load (a create or a delete cut short): its
		// cgroup by path, and whatever libcontainer left.
		if err := s.destroyCgroup(rec.CgroupPath); err != nil {
			return fmt.Errorf("delete task %s: %w", rec.ID, err)
		}
		if err := os.RemoveAll(s.store.ContainerDir(rec.Namespace, rec.ID)); err != nil {
			return fmt.Errorf("delete task %s: %w", rec.ID, err)
		}
	}
	if err := s.removeDelegated(ctx, rec); err != nil {
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
	delete(s.held, rec.ID)
	s.mu.Unlock()
	var annotations map[string]string
	if rec.Hooks != nil {
		annotations = s.annotations(rec) // before the spec goes
	}
	if err := s.store.Remove(rec.Namespace, rec.ID); err != nil {
		return fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	if rec.Hooks != nil {
		if err := runHooks(rec.Hooks.Poststop, rec, annotations, specs.StateStopped, 0); err != nil {
			s.log.Warn("poststop hook failed", "id", rec.ID, "err", err)
		}
	}
	s.log.Info("task deleted", "id", rec.ID)
	return nil
}

// destroyCgroup removes a task's cgroup by its path, for a task whose
// libcontainer state is missing.
func (s *Tasks) destroyCgroup(cgroupPath string) error {
	if cgroupPath == "" || (!path.IsAbs(cgroupPath) && !s.opts.SystemdCgroup) {
		return nil // a relative path is relative to its creator's cgroup: not ours to guess
	}
	m, err := manager.New(&cgroups.Cgroup{Path: cgroupPath, Resources: &cgroups.Resources{}, Systemd: s.opts.SystemdCgroup})
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", cgroupPath, err)
	}
	if err := m.Destroy(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", cgroupPath, err)
	}
	return nil
}

// removeUnreadable removes a task whose record and libcontainer state
// both cannot be read (or are missing: a directory libcontainer knows and
// moor does not). The cgroup is known only if the saved spec names it;
// then its directories go, so that its name is free again.
func (s *Tasks) removeUnreadable(id string, cause error) error {
	if spec, err := s.store.LoadSpec(s.opts.Namespace, id); err == nil && spec.Linux != nil {
		cg := spec.Linux.CgroupsPath
		if cg == "" {
			cg = cgroup.DefaultPath(s.opts.Namespace, id)
		}
		if err := s.destroyCgroup(cg); err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
	}
	if err := rootfs.Cleanup(s.store.ScratchDir(s.opts.Namespace, id)); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	if err := os.RemoveAll(s.store.ContainerDir(s.opts.Namespace, id)); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	if err := s.store.Remove(s.opts.Namespace, id); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	s.log.Warn("deleted a task whose state could not be read", "id", id, "err", cause)
	return nil
}
