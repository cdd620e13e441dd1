package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/cgroup"
)

// watch has the reaper record the anchor's exit. Called with the reaper's
// starts held.
func (s *Supervisor) watch(rec *Record) {
	ns, id, memDir := rec.Namespace, rec.ID, s.memoryDir(rec)
	s.opts.Reaper.Watch(rec.Anchor.PID, func(r Reaped) {
		ex := exitOf(r, memDir)
		s.recordExit(ns, id, ex)
	})
}

// exitOf turns a wait status into an Exit, asking the cgroup whether the
// kernel's OOM killer was the one that sent SIGKILL.
func exitOf(r Reaped, memDir string) *Exit {
	ex := &Exit{Code: r.Code(), Reason: ExitCode, At: time.Now().UTC()}
	if r.Status.Signaled() {
		ex.Reason = ExitSignal
		ex.Signal = unix.SignalName(r.Status.Signal())
		if r.Status.Signal() == unix.SIGKILL && memDir != "" {
			if n, err := cgroup.OOMKills(memDir); err == nil && n > 0 {
				ex.Reason = ExitOOM
			}
		}
	}
	return ex
}

// memoryDir is the directory of the task's memory cgroup, where OOM kills
// are counted.
func (s *Supervisor) memoryDir(rec *Record) string {
	c, err := s.load(rec)
	if err != nil {
		return ""
	}
	st, err := c.State()
	if err != nil {
		return ""
	}
	if p, ok := st.CgroupPaths["memory"]; ok {
		return p
	}
	return st.CgroupPaths[""]
}

// recordExit saves how a task ended and wakes its waiters.
func (s *Supervisor) recordExit(ns, id string, ex *Exit) {
	_, err := s.store.Update(ns, id, func(r *Record) error {
		r.Exit = ex
		if r.Status != Stopped {
			next, err := transition(r.Status, Stopped)
			if err != nil {
				return err
			}
			r.Status = next
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotExist) {
		s.log.Warn("record exit", "id", id, "err", err)
	}
	s.log.Info("task exited", "id", id, "code", ex.Code, "reason", ex.Reason, "signal", ex.Signal)
	s.mu.Lock()
	ws := s.waiters[id]
	delete(s.waiters, id)
	s.exited[id] = ex
	s.mu.Unlock()
	for _, w := range ws {
		w <- ex
	}
}

// Wait blocks until the task's anchor has exited and returns how it ended.
// With a reaper that watches the task, the exit status is exact; otherwise
// Wait watches the anchor through its pidfd and returns the recorded exit,
// if any process recorded one, or nil.
func (s *Supervisor) Wait(ctx context.Context, ref string) (*Exit, error) {
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
