package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/procfs"
)

// createAndStart makes one task of a unit, its output going to its log.
// A task whose start fails is removed.
func (m *Manager) createAndStart(ctx context.Context, u *Unit, restarts, failures int) error {
	logf, err := m.opts.Output.Open(u.ID)
	if err != nil {
		return fmt.Errorf("open output of task %s: %w", u.ID, err)
	}
	defer logf.Close() // the task has its own descriptor now
	_, err = m.sup.Create(ctx, lifecycle.CreateOptions{
		ID: u.ID, Bundle: u.Dir, Spec: u.Spec, IO: lifecycle.IO{Stdout: logf, Stderr: logf},
		Restarts: restarts, Failures: failures,
	})
	if err != nil {
		return err
	}
	if _, err := m.sup.Start(ctx, u.ID); err != nil {
		m.removeTask(ctx, u.ID, 0)
		return err
	}
	return nil
}

// startService starts a service and keeps track of it. A service whose
// create or start fails is kept, with its error (in the status dump, the
// journal and so `moor list`), and retried by its policy as after a
// failed run.
func (m *Manager) startService(ctx context.Context, u *Unit, restarts, failures int) {
	svc := &service{unit: u, restarts: restarts, failures: failures, started: time.Now()}
	if _, ok := m.services[u.ID]; !ok {
		m.order = append(m.order, u.ID)
	}
	m.services[u.ID] = svc
	if err := m.createAndStart(ctx, u, restarts, failures); err != nil {
		m.log.Error("start service", "id", u.ID, "err", err)
		svc.failed = &Untasked{Error: err.Error(), At: time.Now().UTC(), Restarts: restarts, Failures: failures}
		m.noteUntasked(u.ID, svc.failed)
		m.planRestart(svc, &lifecycle.Exit{Code: lifecycle.CodeUnknown, Reason: lifecycle.ExitUnknown, At: svc.started})
		return
	}
	m.noteUntasked(u.ID, nil)
	m.log.Info("service started", "id", u.ID, "restarts", restarts)
}

// noteUntasked keeps in the journal (or, with f nil, forgets) a service
// that has no task: its counts, and its error when its create failed.
func (m *Manager) noteUntasked(id string, f *Untasked) {
	if f == nil {
		if _, ok := m.journal.Untasked[id]; !ok {
			return
		}
		delete(m.journal.Untasked, id)
	} else {
		if m.journal.Untasked == nil {
			m.journal.Untasked = map[string]Untasked{}
		}
		m.journal.Untasked[id] = *f
	}
	m.saveJournal()
}

// handleExit applies a service's restart policy to its anchor's exit. An
// exit while the service's task runs is its former task's (reconcile
// replaced it and the reaper saw it end before its delete): it is ignored.
func (m *Manager) handleExit(id string, ex *lifecycle.Exit) {
	svc := m.services[id]
	if svc == nil || svc.stopping || m.taskAlive(id) {
		return
	}
	m.planRestart(svc, ex)
}

// planRestart applies the service's policy to how its last run ended:
// a restart after the backoff, or none.
func (m *Manager) planRestart(svc *service, ex *lifecycle.Exit) {
	id := svc.unit.ID
	switch svc.unit.Policy.Decide(ex, svc.restarts) {
	case Restart:
		if ex.At.Sub(svc.started) >= m.opts.StableAfter {
			svc.failures = 0
		}
		delay := Backoff(svc.failures)
		svc.failures++
		m.log.Info("restarting service", "id", id, "in", delay, "code", ex.Code, "signal", ex.Signal)
		svc.timer = time.AfterFunc(delay, func() { m.post(func() { m.restart(svc) }) })
	case Poweroff:
		m.log.Info("service powered off: it stays stopped", "id", id)
	default:
		m.log.Info("service stopped: its policy keeps it stopped", "id", id, "code", ex.Code)
	}
}

// taskAlive reports whether the task id has an anchor that has not exited.
func (m *Manager) taskAlive(id string) bool {
	st, err := m.sup.State(id)
	if err != nil {
		return false
	}
	switch st.Status {
	case lifecycle.Created, lifecycle.Running, lifecycle.Paused:
		return true
	}
	return false
}

func (m *Manager) restart(svc *service) {
	id := svc.unit.ID
	if m.services[id] != svc || svc.stopping {
		return // removed, replaced or shutting down since the exit
	}
	ctx := context.Background()
	if svc.failed == nil {
		// Noted first: a supervisor killed between the delete and the
		// create still carries the counts on.
		m.noteUntasked(id, &Untasked{Restarts: svc.restarts + 1, Failures: svc.failures})
		if err := m.sup.Delete(ctx, id, true); err != nil {
			m.log.Warn("delete before restart", "id", id, "err", err)
		}
	}
	m.startService(ctx, svc.unit, svc.restarts+1, svc.failures)
}

// stopService stops a service for good and forgets it.
func (m *Manager) stopService(ctx context.Context, id string) {
	svc := m.services[id]
	if svc == nil {
		return
	}
	svc.stopping = true
	if svc.timer != nil {
		svc.timer.Stop()
	}
	if svc.failed == nil {
		m.removeTask(ctx, id, svc.unit.StopTimeout)
		m.opts.Output.Flush(id) // the last of its output before it is forgotten
	}
	m.noteUntasked(id, nil)
	delete(m.services, id)
	for i, o := range m.order {
		if o == id {
			m.order = append(m.order[:i:i], m.order[i+1:]...)
			break
		}
	}
}

// removeTask stops a task (grace, then SIGKILL) and deletes it.
func (m *Manager) removeTask(ctx context.Context, id string, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+time.Minute)
	defer cancel()
	if err := m.sup.Stop(ctx, id, grace); err != nil {
		m.log.Warn("stop task", "id", id, "err", err)
	}
	if err := m.sup.Delete(ctx, id, true); err != nil {
		m.log.Warn("delete task", "id", id, "err", err)
	}
}

// reconcile re-reads the tree: new services start, removed ones stop,
// changed ones restart.
func (m *Manager) reconcile(ctx context.Context) {
	tree, err := ReadTree(m.opts.Containers)
	if err != nil {
		m.log.Error("re-read containers tree", "err", err)
	}
	if tree == nil {
		return
	}
	want := map[string]*Unit{}
	for _, u := range tree.Services {
		want[u.ID] = u
	}
	for _, id := range append([]string(nil), m.order...) {
		u, keep := want[id]
		switch {
		case !keep:
			m.log.Info("service removed from the tree: stopping it", "id", id)
			m.stopService(ctx, id)
		case u.Digest != m.services[id].unit.Digest:
			m.log.Info("service changed: restarting it", "id", id)
			m.stopService(ctx, id)
		case m.services[id].failed != nil:
			svc := m.services[id]
			m.log.Info("retrying a service whose start failed", "id", id)
			if svc.timer != nil {
				svc.timer.Stop()
			}
			m.startService(ctx, u, svc.restarts, svc.failures)
		}
	}
	for _, u := range tree.Services {
		if _, ok := m.services[u.ID]; !ok {
			m.startService(ctx, u, 0, 0)
		}
	}
	m.log.Info("reconciled", "services", len(m.services))
}

// shutdown stops every service in reverse start order.
func (m *Manager) shutdown() {
	m.opts.Notify(daemon.SdNotifyStopping)
	for _, svc := range m.services {
		svc.stopping = true
	}
	ctx := context.Background()
	for i := len(m.order) - 1; i >= 0; i-- {
		m.stopService(ctx, m.order[i])
	}
	_ = os.Remove(m.dumpPath())
	m.log.Info("all services stopped")
}

// DumpEntry is one task in a status dump.
type DumpEntry struct {
	ID       string           `json:"id"`
	Name     string           `json:"name,omitempty"`
	PID      int              `json:"pid"`
	Status   lifecycle.Status `json:"status"`
	Restarts int              `json:"restarts"`
	RSSKiB   uint64           `json:"rssKiB"`
	// Error is the last create or start error of a service that has no
	// task (its status reads stopped).
	Error string `json:"error,omitempty"`
}

func (m *Manager) dumpPath() string {
	return filepath.Join(m.sup.Store().Root, "status-"+m.opts.Namespace+".json")
}

// dump writes every task's name, PID, status, restarts and RSS to the log
// and to status-<namespace>.json in the state root.
func (m *Manager) dump() {
	states, err := m.sup.List()
	if err != nil {
		m.log.Warn("status dump", "err", err)
	}
	entries := []DumpEntry{}
	for _, st := range states {
		e := DumpEntry{ID: st.ID, PID: st.PID, Status: st.Status, Restarts: st.Restarts}
		if svc := m.services[st.ID]; svc != nil {
			e.Name = svc.unit.Name
		}
		if e.PID > 0 {
			if ps, err := procfs.ReadStatus(m.opts.ProcRoot, e.PID); err == nil {
				e.RSSKiB = ps.RSSKiB
			}
		}
		entries = append(entries, e)
	}
	for _, id := range m.order {
		if svc := m.services[id]; svc.failed != nil {
			entries = append(entries, DumpEntry{ID: id, Name: svc.unit.Name, Status: lifecycle.Stopped, Restarts: svc.restarts, Error: svc.failed.Error})
		}
	}
	for _, e := range entries {
		m.log.Info("status", "id", e.ID, "name", e.Name, "pid", e.PID, "status", e.Status, "restarts", e.Restarts, "rssKiB", e.RSSKiB, "err", e.Error)
	}
	b, _ := json.MarshalIndent(entries, "", "  ")
	if err := atomicfile.Write(m.dumpPath(), append(b, '\n'), 0o600); err != nil {
		m.log.Warn("status dump", "err", err)
	}
}
