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
// directory being removed. A task whose record is corrupt is refused
// unless force (see deleteCorrupt).
func (s *Tasks) Delete(ctx context.Context, ref string, force bool) error {
	var allowed []Status
	if !force {
		allowed = []Status{Stopped, Creating, Deleting}
	}
	h, err := s.open(ref, "delete", locked, allowed...)
	if force && errors.Is(err, ErrCorrupt) {
		return s.deleteCorrupt(ctx, ref, err)
	}
	if errors.Is(err, ErrWrongStatus) {
		return fmt.Errorf("%w (stop it first, or delete --force)", err)
	}
	if err != nil {
		return err
	}
	return h.removeAndClose(ctx)
}

// removeAndClose removes the task, releases its lock and only then runs
// its poststop hooks (see runHooks: the reaper that delivers a hook's
// exit may wait for that lock).
func (h *handle) removeAndClose(ctx context.Context) error {
	hooks, err := h.remove(ctx)
	h.close()
	if hooks != nil {
		hooks()
	}
	return err
}

// remove is delete's work on a task whose record the handle holds; it
// returns the poststop hooks to run once the lock is released.
func (h *handle) remove(ctx context.Context) (hooks func(), err error) {
	s, rec := h.t, h.rec
	c, cerr := h.container()
	if errors.Is(cerr, ErrUnsafePath) { // refused before anything changes
		return nil, fmt.Errorf("delete task %s: %w", rec.ID, cerr)
	}
	// Deleting is recorded first: a delete cut short leaves a task that
	// state and list show as deleting and that delete finishes.
	if rec.Status != Deleting {
		if err := h.setStatus(Deleting); err != nil {
			return nil, fmt.Errorf("delete task %s: %w", rec.ID, err)
		}
	}
	if h.status != Stopped {
		h.killAnchor(ctx)
	}
	if err := h.killRest(ctx); err != nil {
		return nil, fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	if cerr == nil {
		if err := c.Destroy(); err != nil {
			return nil, fmt.Errorf("delete task %s: %w", rec.ID, err)
		}
	} else {
		// No container to load (a create or a delete cut short, or
		// another's state in its place): its cgroup by path, and
		// whatever libcontainer left.
		if err := s.destroyCgroup(rec.CgroupPath); err != nil {
			return nil, fmt.Errorf("delete task %s: %w", rec.ID, err)
		}
		if err := s.store.RemoveContainerDir(rec.Namespace, rec.ID); err != nil {
			return nil, fmt.Errorf("delete task %s: %w", rec.ID, err)
		}
	}
	if err := s.removeDelegated(ctx, rec); err != nil {
		return nil, fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	s.removeCgroupParents(rec)
	if err := s.cleanScratch(rec.ID); err != nil {
		return nil, fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	if s.opts.Reaper != nil {
		s.opts.Reaper.Unwatch(rec.Anchor.PID)
	}
	s.mu.Lock()
	delete(s.exited, rec.ID)
	s.mu.Unlock()
	var annotations map[string]string
	if rec.Hooks != nil {
		annotations = s.annotations(rec) // before the spec goes
	}
	if err := s.store.Remove(rec.Namespace, rec.ID); err != nil {
		return nil, fmt.Errorf("delete task %s: %w", rec.ID, err)
	}
	s.log.Info("task deleted", "id", rec.ID)
	if rec.Hooks != nil {
		hooks = func() {
			if err := s.runHooks(rec.Hooks.Poststop, rec, annotations, specs.StateStopped, 0); err != nil {
				s.log.Warn("poststop hook failed", "id", rec.ID, "err", err)
			}
		}
	}
	return hooks, nil
}

// cleanScratch removes a task's scratch (its mounts first), once the
// store has checked it is a directory of its own.
func (s *Tasks) cleanScratch(id string) error {
	if err := s.store.CheckScratch(s.opts.Namespace, id); err != nil {
		return err
	}
	return rootfs.Cleanup(s.store.ScratchDir(s.opts.Namespace, id))
}

// deleteCorrupt is delete --force of a task whose record is corrupt. It
// acts only on what is the name's own: when libcontainer's state of the
// name (checked to name this task) can be read, the record is rebuilt
// from it and the task deleted as any other, its anchor and cgroup
// those that state names; otherwise only the name's directories go
// (removeUnreadable). What a corrupt record names is never acted on.
func (s *Tasks) deleteCorrupt(ctx context.Context, ref string, cause error) error {
	id, _, err := s.resolveID(ref)
	if err != nil {
		return fmt.Errorf("delete task: %w", err)
	}
	unlock, err := s.store.Lock(s.opts.Namespace, id)
	if errors.Is(err, ErrNotExist) {
		unlock, err = func() {}, nil // libcontainer's state alone
	}
	if err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	rec, rerr := s.recoverRecord(id, cause)
	if rerr != nil {
		defer unlock()
		return s.removeUnreadable(id, cause)
	}
	h := &handle{t: s, rec: rec, unlock: unlock}
	h.observe()
	return h.removeAndClose(ctx)
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
// moor does not). The cgroup is known only if the saved spec names it and
// the record was merely torn (a record that names another place may sit
// beside another's spec); then its directories go, so that its name is
// free again.
func (s *Tasks) removeUnreadable(id string, cause error) error {
	if spec, err := s.store.LoadSpec(s.opts.Namespace, id); err == nil && spec.Linux != nil && errors.Is(cause, errTorn) {
		cg := spec.Linux.CgroupsPath
		if cg == "" {
			cg = cgroup.DefaultPath(s.opts.Namespace, id)
		}
		if err := s.destroyCgroup(cg); err != nil {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
	}
	if err := s.cleanScratch(id); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	if err := s.store.RemoveContainerDir(s.opts.Namespace, id); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	if err := s.store.Remove(s.opts.Namespace, id); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	s.log.Warn("deleted a task whose state could not be read", "id", id, "err", cause)
	return nil
}
