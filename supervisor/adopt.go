package supervisor

import (
	"context"
	"errors"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/lifecycle"
)

// counts are the restart count and quick failures a service carries
// into its next start.
type counts struct{ Restarts, Failures int }

// loadJournal reads what an earlier supervisor of this boot kept; a
// journal of another boot (or none) starts afresh.
func (m *Manager) loadJournal() {
	// A supervisor killed as it wrote its journal or its status dump left
	// a temporary file beside it: this one, their one writer, removes it.
	for _, path := range []string{JournalPath(m.sup.Store().Root, m.opts.Namespace), m.dumpPath()} {
		if err := atomicfile.Sweep(path); err != nil {
			m.log.Warn("supervisor journal", "err", err)
		}
	}
	j, err := ReadJournal(m.sup.Store().Root, m.opts.Namespace)
	if err != nil {
		m.log.Warn("supervisor journal: starting afresh", "err", err)
		j = &Journal{}
	}
	if j.BootID != m.opts.BootID || m.opts.BootID == "" {
		j = &Journal{BootID: m.opts.BootID}
	}
	m.journal = j
}

func (m *Manager) saveJournal() {
	if err := m.journal.write(m.sup.Store().Root, m.opts.Namespace); err != nil {
		m.log.Warn("supervisor journal", "err", err)
	}
}

// adopt takes over what an earlier supervisor of this boot left, so that
// its restart changes nothing: a running service whose spec is still the
// tree's is watched through its pidfd instead of being started twice; a
// stopped one stays stopped when its policy ended it for good, and is
// restarted with its backoff otherwise (it ended while no supervisor
// watched); restart counts and backoff come back from the tasks' records,
// and those of services that had none (being restarted, or their create
// failed) from the journal; a changed service starts afresh. Onboot tasks
// of this boot are left to runOnboot; anything else of the namespace is
// stopped and removed. It returns the counts of the services it did not
// take over, for their start.
func (m *Manager) adopt(tree *Tree) map[string]counts {
	units := map[string]*Unit{}
	for _, u := range tree.Services {
		units[u.ID] = u
	}
	carried := map[string]counts{}
	for id, f := range m.journal.Untasked {
		if units[id] != nil {
			carried[id] = counts{f.Restarts, f.Failures}
		}
	}
	states, err := m.sup.List()
	if err != nil {
		m.log.Warn("list tasks to adopt", "err", err)
	}
	for _, st := range states {
		id := st.ID
		if m.journal.ranOnboot(m.opts.BootID, id) && slices.ContainsFunc(tree.Onboot, func(u *Unit) bool { return u.ID == id }) {
			continue
		}
		if u := units[id]; u != nil && m.sameSpec(id, u) {
			if m.takeOver(u, st) {
				continue
			}
			carried[id] = counts{st.Restarts, st.Failures} // made, never started
		}
		m.log.Info("removing stale task", "id", id)
		m.removeTask(context.Background(), id, DefaultStopTimeout)
	}
	return carried
}

// takeOver makes the service u of an earlier supervisor this one's: a
// running task is watched, a stopped one kept stopped or restarted by its
// policy. It reports false for a task in any other state.
func (m *Manager) takeOver(u *Unit, st *lifecycle.State) bool {
	svc := &service{unit: u, restarts: st.Restarts, failures: st.Failures, started: time.Now()}
	switch st.Status {
	case lifecycle.Running:
		if err := m.sup.Adopt(u.ID); err != nil {
			m.log.Warn("adopt service", "id", u.ID, "err", err)
			return false
		}
		m.log.Info("adopted running service", "id", u.ID, "pid", st.PID, "restarts", st.Restarts)
	case lifecycle.Stopped:
		ex := st.Exit
		if ex == nil {
			ex = &lifecycle.Exit{Code: lifecycle.CodeUnknown, Reason: lifecycle.ExitUnknown}
		}
		svc.started = ex.At // no reset of the backoff for a run of unknown length
		m.log.Info("adopted stopped service", "id", u.ID, "code", ex.Code, "reason", ex.Reason, "restarts", st.Restarts)
		defer m.planRestart(svc, ex)
	default:
		return false
	}
	m.services[u.ID] = svc
	m.order = append(m.order, u.ID)
	return true
}

func (m *Manager) sameSpec(id string, u *Unit) bool {
	spec, err := m.sup.Spec(id)
	if err != nil {
		return false
	}
	d, err := SpecDigest(spec)
	return err == nil && d == u.Digest
}

// runOnboot runs the onboot bundles one at a time, each to completion,
// once per boot: each is noted in the journal before it is made, so that a
// supervisor restarted in the same boot skips the ones that ran and waits
// for one still running. A failure is logged and boot goes on. It returns
// false when a shutdown signal came in the middle.
func (m *Manager) runOnboot(ctx context.Context, units []*Unit, sigs <-chan os.Signal) bool {
	for _, u := range units {
		if m.journal.ranOnboot(m.opts.BootID, u.ID) {
			if !m.finishEarlierOnboot(ctx, u, sigs) {
				return false
			}
			continue
		}
		m.journal.Onboot = append(m.journal.Onboot, u.ID)
		m.saveJournal()
		if !m.runOnbootTask(ctx, u, sigs) {
			return false
		}
	}
	if !m.journal.OnbootDone && len(units) > 0 {
		m.journal.OnbootDone = true
		m.saveJournal()
	}
	return true
}

// finishEarlierOnboot handles an onboot task an earlier supervisor of
// this boot noted: it waits for one still running, removes one left
// stopped, and never runs either again. One that never started (no task
// and no end noted, or a task left created) runs now: the earlier
// supervisor was killed between the note and the start.
func (m *Manager) finishEarlierOnboot(ctx context.Context, u *Unit, sigs <-chan os.Signal) bool {
	st, err := m.sup.State(u.ID)
	switch {
	case m.journal.OnbootDone || slices.Contains(m.journal.OnbootEnded, u.ID):
	case errors.Is(err, lifecycle.ErrNotExist):
		m.log.Info("onboot task of this boot never started: running it", "id", u.ID)
		return m.runOnbootTask(ctx, u, sigs)
	case err != nil:
		m.log.Warn("onboot task of this boot: not run again", "id", u.ID, "err", err)
		return true
	case st.Status == lifecycle.Created:
		m.log.Info("onboot task of this boot never started: running it", "id", u.ID)
		m.removeTask(ctx, u.ID, u.StopTimeout)
		return m.runOnbootTask(ctx, u, sigs)
	case st.Status == lifecycle.Running && m.sup.Adopt(u.ID) == nil:
		m.log.Info("onboot task of this boot still runs: waiting for it", "id", u.ID, "pid", st.PID)
		return m.awaitOnbootTask(ctx, u, sigs)
	}
	m.log.Info("onboot task already ran in this boot", "id", u.ID)
	if err == nil {
		m.removeOnbootTask(ctx, u)
	}
	return true
}

// removeOnbootTask removes an onboot task that started, having noted in
// the journal that it ran: a supervisor killed at any point after never
// runs it again.
func (m *Manager) removeOnbootTask(ctx context.Context, u *Unit) {
	if !slices.Contains(m.journal.OnbootEnded, u.ID) {
		m.journal.OnbootEnded = append(m.journal.OnbootEnded, u.ID)
		m.saveJournal()
	}
	m.removeTask(ctx, u.ID, u.StopTimeout)
}

// runOnbootTask makes and starts an onboot task and waits for its end; a
// failed start is logged and boot goes on. It returns false when a
// shutdown signal came first.
func (m *Manager) runOnbootTask(ctx context.Context, u *Unit, sigs <-chan os.Signal) bool {
	if err := m.createAndStart(ctx, u, 0, 0); err != nil {
		m.log.Error("onboot task failed", "id", u.ID, "err", err)
		return true
	}
	return m.awaitOnbootTask(ctx, u, sigs)
}

// awaitOnbootTask waits for a started onboot task to end, reports it and
// removes it; it returns false when a shutdown signal came first.
func (m *Manager) awaitOnbootTask(ctx context.Context, u *Unit, sigs <-chan os.Signal) bool {
	done := make(chan *lifecycle.Exit, 1)
	go func() { ex, _ := m.sup.Wait(ctx, u.ID); done <- ex }()
	ex, ok := m.awaitOnboot(u.ID, done, sigs)
	if !ok {
		m.removeOnbootTask(ctx, u)
		return false
	}
	m.opts.Output.Flush(u.ID) // its output before what comes next
	if ex != nil && ex.Code != 0 {
		m.log.Error("onboot task failed", "id", u.ID, "code", ex.Code, "reason", ex.Reason, "signal", ex.Signal)
	} else {
		m.log.Info("onboot task done", "id", u.ID)
	}
	m.removeOnbootTask(ctx, u)
	return true
}

// awaitOnboot waits for the onboot task id to exit; ok is false when a
// shutdown signal came first. Meanwhile SIGUSR1 writes a status dump and
// SIGHUP is kept for once the services are started (the tree is re-read
// then): neither ends the boot.
func (m *Manager) awaitOnboot(id string, done <-chan *lifecycle.Exit, sigs <-chan os.Signal) (ex *lifecycle.Exit, ok bool) {
	for {
		select {
		case ex := <-done:
			return ex, true
		case sig := <-sigs:
			switch sig {
			case unix.SIGUSR1:
				m.dump()
			case unix.SIGHUP:
				m.log.Info("SIGHUP during onboot: the tree is re-read once the services are started", "onboot", id)
				m.rereadAfterBoot = true
			default:
				m.log.Info("shutting down during onboot", "signal", sig, "onboot", id)
				return nil, false
			}
		}
	}
}
