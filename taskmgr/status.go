package taskmgr

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/lifecycle"
)

// Status is what the status file holds: every app of the directory.
type Status struct {
	Apps []AppStatus `json:"apps"`
}

// AppStatus is one app's line in the status file.
type AppStatus struct {
	Name     string           `json:"name"`
	PID      int              `json:"pid"` // the anchor's host PID; 0 without a task
	Status   lifecycle.Status `json:"status"`
	Restarts int              `json:"restarts"`
	// LastExit is how its last run ended (code, signal, reason), if one
	// did.
	LastExit *lifecycle.Exit `json:"lastExit,omitempty"`
	// Error is why the app has no task: its description is wrong, or its
	// last create or start failed (tried again after its backoff).
	Error string `json:"error,omitempty"`
}

// snapshot is every app's status now, by name.
func (m *Manager) snapshot() Status {
	s := Status{Apps: []AppStatus{}}
	for name, a := range m.apps {
		as := AppStatus{Name: name, Status: lifecycle.Stopped, Restarts: a.restarts, LastExit: a.lastExit}
		if a.err != nil {
			as.Error = a.err.Error()
		} else if st, err := m.tasks.State(name); err != nil {
			as.Error = err.Error()
		} else {
			as.PID, as.Status, as.Restarts = st.PID, st.Status, st.Restarts
			if st.Status == lifecycle.Stopped {
				as.PID = 0
			}
		}
		s.Apps = append(s.Apps, as)
	}
	for name, err := range m.bad {
		s.Apps = append(s.Apps, AppStatus{Name: name, Status: lifecycle.Stopped, Error: err.Error()})
	}
	slices.SortFunc(s.Apps, func(a, b AppStatus) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// writeStatus rewrites the status file, atomically, when the status
// changed.
func (m *Manager) writeStatus() {
	if m.opts.Status == "" {
		return
	}
	b, err := json.MarshalIndent(m.snapshot(), "", "  ")
	if err != nil {
		m.log.Warn("status file", "err", err)
		return
	}
	b = append(b, '\n')
	if bytes.Equal(b, m.status) {
		return
	}
	if err := atomicfile.Write(m.opts.Status, b, 0o644); err != nil {
		m.log.Warn("status file", "err", err)
		return
	}
	m.status = b
}
