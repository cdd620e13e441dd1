package lifecycle

import (
	"fmt"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/reaper"
)

// Execed is a process started inside a running task.
type Execed struct {
	PID int
	// Done receives the process's exit when the Tasks has a reaper;
	// it is nil otherwise.
	Done <-chan reaper.Reaped
}

// Exec starts another process in a running task's namespaces and cgroup.
func (s *Tasks) Exec(ref string, p *specs.Process, stdio IO, extra []*os.File) (*Execed, error) {
	h, err := s.open(ref, "exec in", unlocked, Running)
	if err != nil {
		return nil, err
	}
	defer h.close()
	if p == nil || len(p.Args) == 0 {
		return nil, fmt.Errorf("exec in task %s: %w: process.args: must name a program", h.rec.ID, ErrInvalidSpec)
	}
	proc, err := newProcess(p, stdio, false)
	if err != nil {
		return nil, fmt.Errorf("exec in task %s: %w", h.rec.ID, err)
	}
	proc.ExtraFiles = extra
	c, err := h.container()
	if err != nil {
		return nil, fmt.Errorf("exec in task %s: %w", h.rec.ID, err)
	}
	ex := &Execed{}
	defer s.startSlot()()
	if s.opts.Reaper != nil {
		// libcontainer waits for its setns bootstrap by PID inside Run;
		// the hold spans that and the watch of the process it leaves.
		release := s.opts.Reaper.HoldStarts()
		defer release()
	}
	if ex.PID, err = c.Run(proc); err != nil {
		return nil, fmt.Errorf("exec in task %s: %w", h.rec.ID, err)
	}
	if s.opts.Reaper != nil {
		ex.Done = s.opts.Reaper.WaitChan(ex.PID)
	}
	return ex, nil
}
