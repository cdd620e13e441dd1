package lifecycle

import (
	"context"
	"fmt"
)

// StartOption changes how Start starts a stopped task.
type StartOption func(*startConfig)

type startConfig struct{ io IO }

// WithIO gives a stopped task's new anchor its standard streams; without
// it the anchor's are /dev/null. (A created task keeps those of its
// create.)
func WithIO(io IO) StartOption { return func(c *startConfig) { c.io = io } }

// startStopped starts a stopped task again, as the task interface's Start
// does: it is made anew from its saved spec and bundle under the same
// name, with a new anchor (a new PID), restarts one more than before, its
// hooks run as for a first start (poststop of the old anchor at its
// delete, then createRuntime… and poststart of the new one), and started.
// The OCI `start` verb refuses a stopped task before it gets here.
func (s *Tasks) startStopped(ctx context.Context, rec *Record, opts []StartOption) (*Record, error) {
	var cfg startConfig
	for _, o := range opts {
		o(&cfg)
	}
	spec, err := s.store.LoadSpec(rec.Namespace, rec.ID)
	if err != nil {
		return nil, fmt.Errorf("start stopped task %s: %w", rec.ID, err)
	}
	if err := s.Delete(ctx, rec.ID, false); err != nil {
		return nil, fmt.Errorf("start stopped task %s: %w", rec.ID, err)
	}
	if _, err := s.Create(ctx, CreateOptions{
		ID: rec.ID, Bundle: rec.Bundle, Spec: spec, IO: cfg.io,
		Restarts: rec.Restarts + 1, Failures: rec.Failures,
	}); err != nil {
		return nil, fmt.Errorf("start stopped task %s: %w", rec.ID, err)
	}
	return s.Start(ctx, rec.ID)
}
