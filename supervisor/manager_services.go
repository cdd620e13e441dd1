package supervisor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/lifecycle"
)

// adopt takes over the tasks an earlier supervisor left running: a live
// task whose spec is still the tree's is watched through its pidfd instead
// of being started twice; anything else of the namespace is stopped and
// removed.
func (m *Manager) adopt(tree *Tree) {
	units := map[string]*Unit{}
	for _, u := range tree.Services {
		units[u.ID] = u
	}
	states, err := m.sup.List()
	if err != nil {
		m.log.Warn("list tasks to adopt", "err", err)
	}
	for _, st := range states {
		id := st.ID
		u := units[id]
		if u != nil && st.Status == lifecycle.Running && m.sameSpec(id, u) {
			if err := m.sup.Adopt(id); err == nil {
				m.services[id] = &service{unit: u, restarts: st.Restarts, failures: st.Failures, started: time.Now()}
				m.order = append(m.order, id)
				m.log.Info("adopted running service", "id", id, "pid", st.PID)
				continue
			}
		}
		m.log.Info("removing stale task", "id", id)
		m.removeTask(context.Background(), id, DefaultStopTimeout)
	}
}

func (m *Manager) sameSpec(id string, u *Unit) bool {
	spec, err := m.sup.Spec(id)
	if err != nil {
		return false
	}
	d, err := SpecDigest(spec)
	return err == nil && d == u.Digest
}

// runOnboot runs the onboot bundles one at a time, each to completion. A
// failure is logged and boot goes on. It returns false when a shutdown
// signal came in the middle.
func (m *Manager) runOnboot(ctx context.Context, units []*Unit, sigs <-chan os.Signal) bool {
	for _, u := range units {
		if !m.createAndStart(ctx, u, 0, 0) {
			continue
		}
		done := make(chan *lifecycle.Exit, 1)
		go func() { ex, _ := m.sup.Wait(ctx, u.ID); done <- ex }()
		ex, ok := m.awaitOnboot(u.ID, done, sigs)
		if !ok {
			m.removeTask(ctx, u.ID, u.StopTimeout)
			return false
		}
		m.opts.Output.Flush(u.ID) // its output before what comes next
		if ex != nil && ex.Code != 0 {
			m.log.Error("onboot task failed", "id", u.ID, "code", ex.Code, "reason", ex.Reason, "signal", ex.Signal)
		} else {
			m.log.Info("onboot task done", "id", u.ID)
		}
		m.removeTask(ctx, u.ID, u.StopTimeout)
	}
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

// createAndStart makes one task of a unit, its output going to its log.
func (m *Manager) createAndStart(ctx context.Context, u *Unit, restarts, failures int) bool {
	logf, err := m.opts.Output.Open(u.ID)
	if err != nil {
		m.log.Error("start task", "id", u.ID, "err", err)
		return false
	}
	defer logf.Close() // the task has its own descriptor now
	_, err = m.sup.Create(ctx, lifecycle.CreateOptions{
		ID: u.ID, Bundle: u.Dir, Spec: u.Spec, IO: lifecycle.IO{Stdout: logf, Stderr: logf},
		Restarts: restarts, Failures: failures,
	})
	if err != nil {
		m.log.Error("create task", "id", u.ID, "err", err)
		return false
	}
	if _, err := m.sup.Start(ctx, u.ID); err != nil {
		m.log.Error("start task", "id", u.ID, "err", err)
		m.removeTask(ctx, u.ID, 0)
		return false
	}
	return true
}

// startService starts a service and keeps track of it.
func (m *Manager) startService(ctx context.Context, u *Unit, restarts int) {
	svc := &service{unit: u, restarts: restarts, started: time.Now()}
	if old, ok := m.services[u.ID]; ok {
		svc.failures = old.failures
	} else {
		m.order = append(m.order, u.ID)
	}
	m.services[u.ID] = svc
	if m.createAndStart(ctx, u, restarts, svc.failures) {
		m.log.Info("service started", "id", u.ID, "restarts", restarts)
	}
}

// handleExit applies a service's restart policy to its anchor's exit. An
// exit while the service's task runs is its former task's (reconcile
// replaced it and the reaper saw it end before its delete): it is ignored.
func (m *Manager) handleExit(id string, ex *lifecycle.Exit) {
	svc := m.services[id]
	if svc == nil || svc.stopping || m.taskAlive(id) {
		return
	}
	switch svc.unit.Policy.Decide(ex, svc.restarts) {
	case Restart:
		if ex.At.Sub(svc.started) >= StableAfter {
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
	if err := m.sup.Delete(ctx, id, true); err != nil {
		m.log.Warn("delete before restart", "id", id, "err", err)
	}
	m.startService(ctx, svc.unit, svc.restarts+1)
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
	m.removeTask(ctx, id, svc.unit.StopTimeout)
	m.opts.Output.Flush(id) // the last of its output before it is forgotten
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
		}
	}
	for _, u := range tree.Services {
		if _, ok := m.services[u.ID]; !ok {
			m.startService(ctx, u, 0)
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
			if ps, err := anchor.ReadStatus(m.opts.ProcRoot, e.PID); err == nil {
				e.RSSKiB = ps.RSSKiB
			}
		}
		m.log.Info("status", "id", e.ID, "name", e.Name, "pid", e.PID, "status", e.Status, "restarts", e.Restarts, "rssKiB", e.RSSKiB)
		entries = append(entries, e)
	}
	b, _ := json.MarshalIndent(entries, "", "  ")
	if err := atomicfile.Write(m.dumpPath(), append(b, '\n'), 0o600); err != nil {
		m.log.Warn("status dump", "err", err)
	}
}
