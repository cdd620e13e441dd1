package lifecycle

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel"
)

// State is a task as the OCI state document describes it, plus what moor
// knows beyond: namespace, cgroup, exit and restarts.
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      Status            `json:"status"`
	PID         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs,omitempty"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Namespace   string            `json:"namespace"`
	CgroupPath  string            `json:"cgroupPath,omitempty"`
	Exit        *Exit             `json:"exit,omitempty"`
	Restarts    int               `json:"restarts,omitempty"`
	Failures    int               `json:"failures,omitempty"`
	// VM is the guest's run state, for a hypervisor task.
	VM *devicemodel.RunState `json:"vm,omitempty"`
	// Reason says why the status is unknown (what is wrong with the
	// task's record), or, in `moor list`, why a supervisor's service has
	// no task (its create failed).
	Reason string `json:"reason,omitempty"`
}

// State reports a task's state as the kernel shows it now, with all the
// annotations of its spec. A task whose record is corrupt is reported
// with the status unknown and the reason; a task directory the store
// refuses (ErrUnsafePath) is an error naming it.
func (s *Tasks) State(ref string) (*State, error) {
	id, rec, err := s.resolveID(ref)
	if err == nil && rec == nil {
		rec, err = s.loadRecord(id)
	}
	if errors.Is(err, ErrCorrupt) {
		return s.unknownState(id, err), nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	st, unfinished := s.stateOf(rec)
	if unfinished {
		s.finishRunState(rec)
	}
	st.Annotations = s.annotations(rec)
	return st, nil
}

// finishRunState writes the run state of a stopped hypervisor task whose
// anchor could not finish it (it was killed): runstate.json then reads
// crashed, as state does, instead of running. Under the task's lock, so
// that it never writes into a run directory a delete removed.
func (s *Tasks) finishRunState(rec *Record) {
	unlock, err := s.store.Lock(rec.Namespace, rec.ID)
	if err != nil {
		return
	}
	defer unlock()
	if now, err := s.store.Load(rec.Namespace, rec.ID); err == nil && now.Anchor == rec.Anchor {
		finishRunState(now.Annotations, now.Exit.signal())
	}
}

// finishRunState finishes the run-state file a killed anchor left
// unfinished (see devicemodel.RunState.AnchorEnded); the caller holds the
// task's lock.
func finishRunState(annotations map[string]string, signal string) {
	vm, err := devicemodel.ReadRunState(annotations)
	if err != nil || vm.End != "" {
		return
	}
	vm.AnchorEnded(signal)
	vm.Updated = time.Now().UTC()
	_ = devicemodel.WriteRunState(annotations[devicemodel.AnnotationRunDir], *vm)
}

// unknownState is what can be said of a task whose record is not
// trusted: its name, and why.
func (s *Tasks) unknownState(id string, why error) *State {
	return &State{OCIVersion: specs.Version, ID: id, Namespace: s.opts.Namespace, Status: Unknown, Reason: why.Error()}
}

// annotations are all the annotations of a task's spec (moor's copy), or
// those the record keeps when the spec cannot be read.
func (s *Tasks) annotations(rec *Record) map[string]string {
	spec, err := s.store.LoadSpec(rec.Namespace, rec.ID)
	if err != nil {
		return rec.Annotations
	}
	return spec.Annotations
}

// stateOf is a task's state; unfinished says a stopped hypervisor task's
// run state is one its killed anchor left unfinished (finished here, in
// the State: see finishRunState for its file).
func (s *Tasks) stateOf(rec *Record) (st *State, unfinished bool) {
	h := s.peek(rec)
	defer h.close()
	st = &State{
		OCIVersion:  specs.Version,
		ID:          rec.ID,
		Status:      h.status,
		Bundle:      rec.Bundle,
		Created:     rec.Created,
		Annotations: rec.Annotations,
		Namespace:   rec.Namespace,
		CgroupPath:  rec.CgroupPath,
		Exit:        rec.Exit,
		Restarts:    rec.Restarts,
		Failures:    rec.Failures,
	}
	if vm, err := devicemodel.ReadRunState(rec.Annotations); err == nil {
		st.VM = vm
	}
	if st.Status != Stopped {
		st.PID = rec.Anchor.PID
	} else {
		st.Exit = h.stoppedExit(st.VM)
		if unfinished = st.VM != nil && st.VM.End == ""; unfinished {
			st.VM.AnchorEnded(rec.Exit.signal())
		}
	}
	st.Rootfs = rec.Rootfs
	if st.Rootfs == "" { // a record from before Rootfs was kept
		if spec, err := s.store.LoadSpec(rec.Namespace, rec.ID); err == nil && spec.Root != nil {
			st.Rootfs = spec.Root.Path
			if !filepath.IsAbs(st.Rootfs) {
				st.Rootfs = filepath.Join(rec.Bundle, st.Rootfs)
			}
		}
	}
	return st, unfinished
}

// List reports every task of the namespace, reading only the records:
// the annotations are those moor reads itself (moor.*, the stop signal).
// A name whose record is corrupt, or whose directory the store refuses,
// is listed with the status unknown and the reason.
func (s *Tasks) List() ([]*State, error) {
	ids, err := s.store.IDs(s.opts.Namespace)
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, id := range ids {
		rec, err := s.loadRecord(id)
		if errors.Is(err, ErrNotExist) {
			continue // a task deleted right now
		}
		if err != nil {
			s.log.Warn("task state unknown (delete --force removes it)", "id", id, "err", err)
			out = append(out, s.unknownState(id, err))
			continue
		}
		st, _ := s.stateOf(rec)
		out = append(out, st)
	}
	return out, nil
}

// Spec is the spec a task was created from (as updated since).
func (s *Tasks) Spec(ref string) (*specs.Spec, error) {
	rec, err := s.Resolve(ref)
	if err != nil {
		return nil, fmt.Errorf("spec of task: %w", err)
	}
	return s.store.LoadSpec(rec.Namespace, rec.ID)
}

// stoppedExit is how a stopped task ended. A container app VM's is its
// app's, as its guest reported it, whether or not a reaper of moor's saw
// the anchor end (vm is the guest's run state, nil for other tasks); a
// Another's is the exit recorded or, when no reaper of moor's saw it (a
// task created and started by the CLI), an OOM kill while the task's
// cgroup counts it; otherwise the code and reason are unknown.
func (h *handle) stoppedExit(vm *devicemodel.RunState) *Exit {
	ex := appExit(vm, h.rec.Exit)
	if ex == nil {
		ex = h.rec.Exit
	}
	if ex == nil {
		memDir := ""
		if c, err := h.container(); err == nil {
			memDir = memoryDir(c)
		}
		ex = unseenExit(memDir, nil)
	}
	return ex
}
