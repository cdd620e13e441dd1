package taskmgr

import (
	"context"
	"fmt"
	"time"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/supervisor"
)

// adopt takes over what an earlier Manager left in the namespace, so that
// its restart (pillar killed and started again) changes nothing: a
// running app whose spec is still its description's is watched through
// its anchor's pidfd instead of being started twice; a stopped one is
// restarted after its backoff; restart counts go on from the tasks'
// records. Every other task of the namespace (an app whose description
// is gone or changed, a task never started) is stopped and deleted; an
// app among them is then made afresh, keeping its count.
func (m *Manager) adopt(ctx context.Context, apps map[string]*App) {
	states, err := m.tasks.List()
	if err != nil {
		m.log.Warn("list tasks to adopt", "err", err)
	}
	for _, st := range states {
		a := apps[st.ID]
		if a != nil && m.sameSpec(a) && m.takeOver(&app{App: a, restarts: st.Restarts, failures: st.Failures}, st) {
			continue
		}
		m.log.Info("removing a task that is no app to keep", "app", st.ID, "status", st.Status)
		m.remove(ctx, st.ID, supervisor.DefaultStopTimeout)
		if a != nil {
			m.start(ctx, &app{App: a, restarts: st.Restarts})
		}
	}
}

// sameSpec reports whether the app's task was made from the spec its
// description gives now.
func (m *Manager) sameSpec(a *App) bool {
	saved, err := m.tasks.Spec(a.Name)
	if err != nil {
		return false
	}
	was, err1 := supervisor.SpecDigest(saved)
	now, err2 := supervisor.SpecDigest(a.Spec)
	return err1 == nil && err2 == nil && was == now
}

// takeOver makes a running or stopped task of an earlier Manager this
// one's; it reports false for a task in any other state.
func (m *Manager) takeOver(a *app, st *lifecycle.State) bool {
	a.started = time.Now()
	switch st.Status {
	case lifecycle.Running, lifecycle.Paused:
		if err := m.tasks.Adopt(a.Name); err != nil {
			m.log.Warn("adopt app", "app", a.Name, "err", err)
			return false
		}
		m.log.Info("adopted running app", "app", a.Name, "pid", st.PID, "restarts", st.Restarts)
	case lifecycle.Stopped:
		// It ended while no Manager watched: a run of unknown length,
		// so no reset of its backoff.
		a.lastExit = st.Exit
		if a.lastExit == nil {
			a.lastExit = &lifecycle.Exit{Code: lifecycle.CodeUnknown, Reason: lifecycle.ExitUnknown}
		}
		m.log.Info("adopted stopped app", "app", a.Name, "code", a.lastExit.Code, "restarts", st.Restarts)
		defer m.planRestart(a)
	default:
		return false
	}
	m.apps[a.Name] = a
	return true
}

// start makes the app's task and starts it; an app whose create or start
// fails keeps its error (in the status file) and is tried again after its
// backoff.
func (m *Manager) start(ctx context.Context, a *app) {
	m.apps[a.Name] = a
	if err := m.createAndStart(ctx, a, a.restarts); err != nil {
		m.failed(a, err)
		return
	}
	m.log.Info("app started", "app", a.Name, "restarts", a.restarts)
}

// createAndStart makes a task of the app and starts it; a task whose
// start fails is deleted.
func (m *Manager) createAndStart(ctx context.Context, a *app, restarts int) error {
	a.started = time.Now()
	_, err := m.tasks.Create(ctx, lifecycle.CreateOptions{
		ID: a.Name, Bundle: a.Dir, Spec: a.Spec, Restarts: restarts, Failures: a.failures,
	})
	if err != nil {
		return err
	}
	if _, err := m.tasks.Start(ctx, a.Name); err != nil {
		m.remove(ctx, a.Name, 0)
		return err
	}
	a.err = nil
	return nil
}

// failed notes a create or start that failed and plans the next try.
func (m *Manager) failed(a *app, err error) {
	m.log.Error("start app", "app", a.Name, "err", err)
	a.err = err
	m.planRestart(a)
}

// handleExit restarts an app whose anchor exited, unless the Manager
// ended it.
func (m *Manager) handleExit(id string, ex *lifecycle.Exit) {
	a := m.apps[id]
	if a == nil || a.stopping {
		return
	}
	a.lastExit = ex
	m.planRestart(a)
}

// planRestart restarts the app after its backoff.
func (m *Manager) planRestart(a *app) {
	var delay time.Duration
	delay, a.failures = backoff(a.failures, time.Since(a.started))
	m.log.Info("restarting app", "app", a.Name, "in", delay)
	a.timer = time.AfterFunc(delay, func() { m.send(func() { m.restart(a) }) })
}

// backoff is the wait before a restart and the quick failures in a row
// it makes, for an app that had failures of them before a run that
// lasted ran: supervisor's backoff (100 ms doubling to 30 s), its count
// reset by a run of supervisor.StableAfter (10 s).
func backoff(failures int, ran time.Duration) (time.Duration, int) {
	if ran >= supervisor.StableAfter {
		failures = 0
	}
	return supervisor.Backoff(failures), failures + 1
}

// restart starts the app's task again once its backoff is over.
func (m *Manager) restart(a *app) {
	if m.apps[a.Name] != a || a.stopping {
		return
	}
	a.timer = nil
	ctx := context.Background()
	var err error
	if a.err != nil { // its create or start failed: there is no task
		err = m.createAndStart(ctx, a, a.restarts)
	} else {
		err = m.startStopped(ctx, a)
	}
	if err != nil {
		m.failed(a, err)
		return
	}
	m.log.Info("app restarted", "app", a.Name)
}

// startStopped starts the app's stopped task again: lifecycle's Start of
// a stopped task makes it anew from its saved spec (a new anchor, the
// same name, restarts+1).
func (m *Manager) startStopped(ctx context.Context, a *app) error {
	a.started = time.Now()
	if _, err := m.tasks.Start(ctx, a.Name); err != nil {
		return fmt.Errorf("restart app %s: %w", a.Name, err)
	}
	return nil
}
