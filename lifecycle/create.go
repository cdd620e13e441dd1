package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/rootfs"
)

// CreateOptions describe a task to create.
type CreateOptions struct {
	ID     string
	Bundle string // the bundle directory; relative paths in Spec are resolved against it
	Spec   *specs.Spec
	IO     IO
	// ExtraFiles are passed to the task's process as fds 3, 4, ...
	ExtraFiles []*os.File
	// Restarts is how many times the task was made again before this
	// one, and Failures how many of those followed quick failures in a
	// row: what a supervisor's restart policy and backoff keep, in the
	// record, so that a supervisor that adopts the task goes on from them.
	Restarts, Failures int
}

// checkCreate validates a create before anything is made, and returns the
// absolute bundle and the spec with its paths made absolute and its cgroup
// path defaulted.
func (s *Tasks) checkCreate(o CreateOptions) (string, *specs.Spec, error) {
	if err := CheckID(o.ID); err != nil {
		return "", nil, fmt.Errorf("create task: %w", err)
	}
	validate := RequireMinimumSpec
	if s.opts.AnySpec && !wantsMinimumSpec(o.Spec) {
		validate = ValidateSpec
	}
	if err := validate(o.Spec); err != nil {
		return "", nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return "", nil, fmt.Errorf("create task %s: bundle: %w", o.ID, err)
	}
	spec := absolutize(o.Spec, bundle)
	if fi, err := os.Stat(spec.Root.Path); err != nil || !fi.IsDir() {
		return "", nil, fmt.Errorf("create task %s: %w: root.path: %s is not a directory", o.ID, ErrInvalidSpec, spec.Root.Path)
	}
	cg := spec.Linux.CgroupsPath
	if err := cgroup.CheckPath(cg, s.opts.SystemdCgroup); cg != "" && err != nil {
		return "", nil, fmt.Errorf("create task %s: %w: linux.cgroupsPath: %w", o.ID, ErrInvalidSpec, err)
	}
	if !s.opts.SystemdCgroup {
		if cg == "" {
			cg = cgroup.DefaultPath(s.opts.Namespace, o.ID)
			if s.opts.CgroupParent != "" {
				cg = o.ID
			}
		}
		var err error
		if cg, err = cgroup.Confine(s.opts.CgroupParent, cg); err != nil {
			return "", nil, fmt.Errorf("create task %s: %w: linux.cgroupsPath: %w", o.ID, ErrInvalidSpec, err)
		}
	} else if cg == "" {
		cg = cgroup.DefaultPath(s.opts.Namespace, o.ID)
	}
	spec.Linux.CgroupsPath = cg
	if err := s.checkIsolation(spec); err != nil {
		return "", nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	return bundle, spec, nil
}

// Create makes a task's namespaces, cgroup and anchor; the anchor waits for
// Start. The spec is validated first: a bad spec leaves nothing behind, and
// so does any later failure.
//
// The steps are ordered for a crash at any point (see the package doc):
// the record is made first, with the status creating, so that the name is
// taken and delete can finish what a killed create left; then the scratch,
// the cgroup parents' registry, libcontainer's container and the anchor.
func (s *Tasks) Create(ctx context.Context, o CreateOptions) (*Record, error) {
	bundle, spec, err := s.checkCreate(o)
	if err != nil {
		return nil, err
	}
	rec := &Record{
		ID:            o.ID,
		Namespace:     s.opts.Namespace,
		Bundle:        bundle,
		Rootfs:        spec.Root.Path,
		Status:        Creating,
		Created:       time.Now().UTC(),
		Annotations:   ownAnnotations(spec.Annotations),
		CgroupPath:    spec.Linux.CgroupsPath,
		CgroupParents: cgroup.MissingAncestors(s.hierarchies(), spec.Linux.CgroupsPath),
		Restarts:      o.Restarts,
		Failures:      o.Failures,
	}
	if !path.IsAbs(rec.CgroupPath) && !s.opts.SystemdCgroup {
		leaves, err := cgroup.LeafDirs(rec.CgroupPath)
		if err != nil {
			return nil, fmt.Errorf("create task %s: %w", o.ID, err)
		}
		rec.CgroupParents, rec.CgroupParentDirs = nil, cgroup.MissingParentDirs(leaves)
	}
	if err := s.store.Claim(rec); err != nil {
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	unlock, err := s.store.Lock(s.opts.Namespace, o.ID)
	if err != nil {
		_ = s.store.Remove(s.opts.Namespace, o.ID)
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	defer unlock() // deferred first, so it runs last: the undo holds the lock
	var undo cleanup
	defer undo.run()
	undo.push(func() { _ = s.store.Remove(s.opts.Namespace, o.ID) })
	if err := s.store.SaveSpec(s.opts.Namespace, o.ID, o.Spec); err != nil {
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	if err := s.prepareRoot(spec, o.ID, &undo); err != nil {
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       o.ID,
		UseSystemdCgroup: s.opts.SystemdCgroup,
		Spec:             spec,
	})
	if err != nil {
		return nil, fmt.Errorf("create task %s: %w: %w", o.ID, ErrInvalidSpec, err)
	}
	fitLibcontainer(cfg, s.log)
	rec.Hooks = arrangeHooks(cfg, s.opts.HookRunner)
	setLabels(cfg, bundle)
	proc, err := newProcess(spec.Process, o.IO, true)
	if err != nil {
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	proc.ExtraFiles = o.ExtraFiles
	if err := s.noteCgroupParents(rec); err != nil {
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	undo.push(func() { s.removeCgroupParents(rec) })
	if err := s.delegate(rec, cfg, &undo); err != nil {
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	c, err := s.opts.Runtime.Create(s.store.NamespaceDir(s.opts.Namespace), o.ID, cfg)
	if err != nil {
		if errors.Is(err, libcontainer.ErrExist) {
			err = fmt.Errorf("%w (libcontainer's state of that name is left: delete --force frees it)", ErrExist)
		}
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	undo.push(func() {
		if err := c.Destroy(); err != nil {
			s.log.Warn("undo create: destroy container", "id", o.ID, "err", err)
		}
	})
	if err := os.Chmod(s.store.ContainerDir(s.opts.Namespace, o.ID), 0o700); err != nil {
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	if err := s.startAnchor(c, proc, rec); err != nil {
		return nil, fmt.Errorf("create task %s: %w", o.ID, err)
	}
	undo.release()
	s.log.Info("task created", "id", o.ID, "pid", rec.Anchor.PID, "cgroup", rec.CgroupPath)
	return rec, nil
}

// prepareRoot makes the task's root real in its scratch directory, after
// cleaning one a crashed create left: first what its user namespace
// needs (an idmapped root), then the rest of the root and its network.
// Undo steps go on undo.
func (s *Tasks) prepareRoot(spec *specs.Spec, id string, undo *cleanup) error {
	if err := s.cleanScratch(id); err != nil {
		return fmt.Errorf("stale scratch: %w", err)
	}
	scratch := s.store.ScratchDir(s.opts.Namespace, id)
	for _, prepare := range []func(*specs.Spec, string) (func() error, error){s.userNS.Prepare, rootfs.Prepare} {
		undoStep, err := prepare(spec, scratch)
		if err != nil {
			return err
		}
		undo.push(func() {
			if err := undoStep(); err != nil {
				s.log.Warn("undo create: clean scratch", "id", id, "err", err)
			}
		})
	}
	return nil
}

// startAnchor forks the anchor (blocked until Start) and records it: its
// identity and the status created are saved (the caller holds the task's
// lock) before a reaper may collect it, so an early exit is never lost nor
// taken for a stale one.
//
// This is the one place (with Exec) that holds the reaper: libcontainer
// forks its init's bootstrap stages itself and waits for them by PID
// inside c.Start, which a reaping loop would race; and the anchor it
// leaves is watched only once recorded. The hold spans exactly that: the
// fork through the watch.
func (s *Tasks) startAnchor(c Container, proc *libcontainer.Process, rec *Record) error {
	defer s.startSlot()()
	if s.opts.Reaper != nil {
		release := s.opts.Reaper.HoldStarts()
		defer release()
	}
	pid, err := c.Start(proc)
	if err != nil {
		return fmt.Errorf("start anchor: %w", err)
	}
	id, err := anchor.Capture(s.opts.ProcRoot, pid)
	if err != nil {
		_ = unix.Kill(pid, unix.SIGKILL) // our own child, not yet reaped: the PID is still ours
		return err
	}
	rec.Anchor = id
	if rec.Status, err = transition(rec.Status, Created); err != nil {
		return err
	}
	if err := s.store.Save(rec); err != nil {
		return err
	}
	s.hold(rec, c)
	if s.opts.Reaper != nil {
		s.mu.Lock()
		delete(s.exited, rec.ID)
		s.mu.Unlock()
		s.watch(rec, c)
	}
	return nil
}

// Start lets a created task's anchor run the task's process, or starts a
// stopped task again (startStopped: a new anchor, the same name), as the
// task interface's Start does.
func (s *Tasks) Start(ctx context.Context, ref string, opts ...StartOption) (*Record, error) {
	rec, err := s.StartCreated(ctx, ref)
	if errors.Is(err, ErrWrongStatus) {
		if rec, rerr := s.Resolve(ref); rerr == nil && s.observe(rec) == Stopped {
			return s.startStopped(ctx, rec, opts)
		}
	}
	return rec, err
}

// StartCreated lets a created task's anchor run the task's process; a
// task in any other status is refused (ErrWrongStatus), as the OCI
// runtime spec's start requires.
func (s *Tasks) StartCreated(ctx context.Context, ref string) (*Record, error) {
	h, err := s.open(ref, "start", locked, Created)
	if err != nil {
		return nil, err
	}
	var hooks func() // run once the lock is released (see runHooks)
	defer func() {
		h.close()
		if hooks != nil {
			hooks()
		}
	}()
	rec := h.rec
	c, err := h.container()
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", rec.ID, err)
	}
	if err := c.Exec(); err != nil {
		return nil, fmt.Errorf("start task %s: %w", rec.ID, err)
	}
	if !s.opts.HoldContainers {
		s.unhold(rec.ID)
	}
	h.noteStatus("start", Running) // the anchor is let go: started, whatever the disk says
	s.log.Info("task started", "id", rec.ID, "pid", rec.Anchor.PID)
	if rec.Hooks != nil {
		annotations := s.annotations(rec)
		hooks = func() {
			if err := s.runHooks(rec.Hooks.Poststart, rec, annotations, specs.StateRunning, rec.Anchor.PID); err != nil {
				s.log.Warn("poststart hook failed", "id", rec.ID, "err", err)
			}
		}
	}
	return rec, nil
}
