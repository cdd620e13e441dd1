package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/reaper"
)

// watch has the reaper record the anchor's exit. Called with the reaper's
// starts held, with the container just started.
func (s *Tasks) watch(rec *Record, c Container) {
	ns, id, who, memDir := rec.Namespace, rec.ID, rec.Anchor, memoryDir(c)
	s.opts.Reaper.Watch(rec.Anchor.PID, func(r reaper.Reaped) {
		s.recordExit(ns, id, who, exitOf(r, memDir))
	})
}

// exitOf turns a wait status into an Exit, asking the cgroup whether the
// kernel's OOM killer was the one that sent SIGKILL.
func exitOf(r reaper.Reaped, memDir string) *Exit {
	ex := &Exit{Code: r.Code(), Reason: ExitCode, At: time.Now().UTC()}
	if r.Status.Signaled() {
		ex.Reason = ExitSignal
		ex.Signal = unix.SignalName(r.Status.Signal())
		if r.Status.Signal() == unix.SIGKILL && oomKilled(memDir) {
			ex.Reason = ExitOOM
		}
	}
	return ex
}

// unseenExit is the exit of an anchor whose status no reaper of moor's
// saw: a container app VM's app exit when its guest reported one (vm,
// nil for other tasks), an OOM kill while the task's memory cgroup
// (memDir) counts one, otherwise unknown.
func unseenExit(memDir string, vm *devicemodel.RunState) *Exit {
	if ex := appExit(vm, nil); ex != nil {
		return ex
	}
	if oomKilled(memDir) {
		return &Exit{Code: 128 + int(unix.SIGKILL), Signal: "SIGKILL", Reason: ExitOOM}
	}
	return &Exit{Code: CodeUnknown, Reason: ExitUnknown}
}

// appExit is the exit of a container app VM as its guest reported the
// app's (vm.AppExit): the code the anchor exits with, and the signal that
// killed the app, if one did. It is nil for another task or an app that
// reported none. seen, the anchor's exit when a reaper saw it, gives the
// time.
func appExit(vm *devicemodel.RunState, seen *Exit) *Exit {
	if vm == nil || vm.AppExit == nil {
		return nil
	}
	ex := &Exit{Code: vm.AppExit.Code, Signal: vm.AppExit.Signal, Reason: ExitCode, At: vm.Updated}
	if ex.Signal != "" {
		ex.Reason = ExitSignal
	}
	if seen != nil {
		ex.At = seen.At
	}
	return ex
}

// oomKilled reports whether a memory cgroup ("" for none) counts an OOM
// kill.
func oomKilled(memDir string) bool {
	if memDir == "" {
		return false
	}
	n, err := cgroup.OOMKills(memDir)
	return err == nil && n > 0
}

// memoryDir is the directory of the task's memory cgroup, where OOM kills
// are counted.
func memoryDir(c Container) string {
	st, err := c.State()
	if err != nil {
		return ""
	}
	if p, ok := st.CgroupPaths["memory"]; ok {
		return p
	}
	return st.CgroupPaths[""]
}

// recordExit saves how the anchor who of a task ended, tells OnExit and
// wakes the task's waiters. An exit is recorded once, and only for the
// anchor the task still has: a late report of an earlier anchor of a
// restarted task changes nothing.
func (s *Tasks) recordExit(ns, id string, who anchor.Identity, ex *Exit) {
	var report *Exit // the exit this Tasks reports, if any
	_, err := s.store.Update(ns, id, func(r *Record) error {
		switch {
		case r.Anchor != who: // a later anchor's record
		case r.Exit == nil:
			r.Exit, report = ex, ex
			finishRunState(r.Annotations, ex.Signal)
			if r.Status != Stopped && r.Status != Deleting {
				next, err := transition(r.Status, Stopped)
				if err != nil {
					return err
				}
				r.Status = next
			}
		case r.Exit.Code == CodeUnknown && ex.Code != CodeUnknown:
			// The reaper's status, come after an adoption's watch that
			// could only say unknown: the record gets the truth; the
			// exit was reported already.
			r.Exit = ex
			s.log.Info("task exited", "id", id, "pid", who.PID, "code", ex.Code, "reason", ex.Reason, "signal", ex.Signal)
		default:
			// Recorded by another (the machine's init that reaped the
			// adopted anchor): this Tasks reports that exit, once.
			s.mu.Lock()
			if _, seen := s.exited[id]; !seen {
				report = r.Exit
			}
			s.mu.Unlock()
		}
		return nil
	})
	if err != nil && errors.Is(err, ErrNotExist) {
		report = ex // its record is gone (deleted): its waiters are still told
	} else if err != nil {
		s.log.Warn("record exit", "id", id, "err", err)
	}
	if report == nil {
		return
	}
	s.log.Info("task exited", "id", id, "pid", who.PID, "code", report.Code, "reason", report.Reason, "signal", report.Signal)
	if s.opts.OnExit != nil {
		s.opts.OnExit(id, report)
	}
	s.mu.Lock()
	ws := s.waiters[id]
	delete(s.waiters, id)
	s.exited[id] = report
	s.mu.Unlock()
	for _, w := range ws {
		w <- report
	}
}

// Wait blocks until the task's anchor has exited and returns how it ended.
// With a reaper that watches the task, the exit status is exact; otherwise
// Wait watches the anchor through its pidfd and returns the recorded exit,
// if any process recorded one, or nil.
func (s *Tasks) Wait(ctx context.Context, ref string) (*Exit, error) {
	rec, err := s.Resolve(ref)
	if err != nil {
		return nil, fmt.Errorf("wait for task: %w", err)
	}
	if rec.Exit != nil {
		return rec.Exit, nil
	}
	if s.opts.Reaper != nil {
		s.mu.Lock()
		if ex, ok := s.exited[rec.ID]; ok {
			s.mu.Unlock()
			return ex, nil
		}
		ch := make(chan *Exit, 1)
		s.waiters[rec.ID] = append(s.waiters[rec.ID], ch)
		s.mu.Unlock()
		select {
		case ex := <-ch:
			return ex, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for task %s: %w", rec.ID, ctx.Err())
		}
	}
	h, err := rec.Anchor.Open(s.opts.ProcRoot)
	if err == nil {
		err = h.Wait(ctx)
		h.Close()
	}
	if err != nil && !errors.Is(err, anchor.ErrGone) {
		return nil, fmt.Errorf("wait for task %s: %w", rec.ID, err)
	}
	if rec, err = s.store.Load(rec.Namespace, rec.ID); err == nil {
		return rec.Exit, nil
	}
	return nil, nil
}

// ExitUnknown is the reason recorded for an adopted anchor: moor saw it end
// through its pidfd but was not its parent, so the status is not known.
const ExitUnknown ExitReason = "unknown"

// Adopt watches a running task that another process created (an earlier
// supervisor, the CLI): its exit is recorded, with reason ExitUnknown (or
// ExitOOM when its cgroup saw an OOM kill), and reported to OnExit. The
// wait goes through Go's network poller on the anchor's pidfd, so adopted
// tasks cost no OS thread.
func (s *Tasks) Adopt(ref string) error {
	t, err := s.open(ref, "adopt", unlocked, Created, Running, Paused)
	if err != nil {
		return err
	}
	rec, h := t.rec, t.anchor
	t.anchor = nil // the watch below keeps the pidfd
	memDir := ""
	if c, err := t.container(); err == nil {
		memDir = memoryDir(c)
	}
	t.close()
	s.mu.Lock()
	delete(s.exited, rec.ID)
	s.mu.Unlock()
	go func() {
		defer h.Close()
		if err := h.Wait(context.Background()); err != nil {
			s.log.Warn("watch adopted task", "id", rec.ID, "err", err)
			return
		}
		vm, _ := devicemodel.ReadRunState(rec.Annotations)
		ex := unseenExit(memDir, vm)
		ex.At = time.Now().UTC()
		s.recordExit(rec.Namespace, rec.ID, rec.Anchor, ex)
	}()
	return nil
}

// RecordOrphan records the exit of a child the process's reaper collected
// for nobody (an orphan handed to PID 1 or to a subreaper), when it is the
// anchor of a task of any namespace under the state root whose exit is
// not known yet (none, or an adopter's unknown): a task created by another process (the CLI, a manager embedding
// this library) whose anchor the machine's init, or a supervisor, reaped.
// The record gets the exit as a foreground run's would (code, signal,
// oom). It reports whether the orphan was such an anchor.
//
// The PID is matched while the orphan is a zombie not yet collected by
// anyone else, so it cannot be another process's; a record whose anchor
// died unseen long ago and whose PID came back as this orphan is the one
// case this cannot tell, and only one with no exit recorded.
func (s *Tasks) RecordOrphan(r reaper.Reaped) bool {
	namespaces, err := s.store.Namespaces()
	if err != nil {
		s.log.Warn("record an orphan's exit", "pid", r.PID, "err", err)
		return false
	}
	for _, ns := range namespaces {
		ids, _ := s.store.IDs(ns)
		for _, id := range ids {
			rec, err := s.store.Load(ns, id)
			if err != nil || rec.Anchor.PID != r.PID || (rec.Exit != nil && rec.Exit.Code != CodeUnknown) {
				continue // not this anchor's, or its exit is known already
			}
			in := s.inNamespace(ns)
			memDir := ""
			if c, err := in.loadContainer(ns, id); err == nil {
				memDir = memoryDir(c)
			}
			in.recordExit(ns, id, rec.Anchor, exitOf(r, memDir))
			return true
		}
	}
	return false
}
