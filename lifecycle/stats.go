package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/cgroup"
)

// Stats reads the statistics of a live task's cgroup (CPU, memory, pids,
// block I/O, hugetlb) through libcontainer's cgroup manager.
func (s *Tasks) Stats(ref string) (*cgroups.Stats, error) {
	h, err := s.open(ref, "read stats of", unlocked, Created, Running, Paused)
	if err != nil {
		return nil, err
	}
	defer h.close()
	c, err := h.container()
	if err != nil {
		return nil, fmt.Errorf("read stats of task %s: %w", h.rec.ID, err)
	}
	return s.stats(h.rec, c)
}

func (s *Tasks) stats(rec *Record, c Container) (*cgroups.Stats, error) {
	ls, err := c.Stats()
	if err != nil {
		return nil, fmt.Errorf("read stats of task %s: %w", rec.ID, err)
	}
	return ls.CgroupStats, nil
}

// EventKind says what an Event reports.
type EventKind int

const (
	// EventStats carries the task's cgroup statistics.
	EventStats EventKind = iota + 1
	// EventOOM reports one OOM kill in the task's cgroup.
	EventOOM
)

// Event is one report of Events.
type Event struct {
	Kind  EventKind
	ID    string         // the task's ID
	Stats *cgroups.Stats // EventStats only
}

// Events reports a live task to fn until its anchor exits: its cgroup
// statistics every interval (the first after one interval) and an EventOOM
// for each OOM kill its cgroup records from now on. It returns nil once the
// anchor is gone and the last OOM kills are reported, ctx's error when ctx
// ends first, and fn's error as soon as fn fails. A failed statistics read
// is logged and skipped, as the task may be exiting.
//
// OOM kills are counted in the cgroup (memory.events or memory.oom_control)
// whenever the kernel's OOM notification fires, at every interval, and
// once more after the anchor has exited.
func (s *Tasks) Events(ctx context.Context, ref string, interval time.Duration, fn func(Event) error) error {
	if interval <= 0 {
		return fmt.Errorf("watch events: interval %v: must be positive", interval)
	}
	h, err := s.open(ref, "watch events of", unlocked, Created, Running, Paused)
	if err != nil {
		return err
	}
	defer h.close()
	rec := h.rec
	c, err := h.container()
	if err != nil {
		return fmt.Errorf("watch events of task %s: %w", rec.ID, err)
	}
	gone := s.watchGone(ctx, rec.ID, h.anchor)
	oom := s.newOOMCounter(rec, c)
	notify, err := c.NotifyOOM()
	if err != nil {
		s.log.Debug("no OOM notification: OOM kills are counted at each interval", "id", rec.ID, "err", err)
		notify = nil
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("watch events of task %s: %w", rec.ID, ctx.Err())
		case <-gone:
			return oom.report(fn)
		case _, ok := <-notify:
			if !ok {
				notify = nil // the cgroup is gone
				continue
			}
			if err := oom.report(fn); err != nil {
				return err
			}
		case <-tick.C:
			st, err := s.stats(rec, c)
			if err != nil {
				s.log.Warn("read stats", "id", rec.ID, "err", err)
			} else if err := fn(Event{Kind: EventStats, ID: rec.ID, Stats: st}); err != nil {
				return err
			}
			if err := oom.report(fn); err != nil {
				return err
			}
		}
	}
}

// watchGone returns a channel closed when the anchor a (nil: gone
// already) has exited.
func (s *Tasks) watchGone(ctx context.Context, id string, a *anchor.Handle) <-chan struct{} {
	gone := make(chan struct{})
	if a == nil {
		close(gone)
		return gone
	}
	go func() {
		if err := a.Wait(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, anchor.ErrGone) {
			s.log.Warn("watch anchor", "id", id, "err", err)
		}
		close(gone)
	}()
	return gone
}

// oomCounter turns the growth of a cgroup's OOM kill count into events.
type oomCounter struct {
	id   string
	dir  string // the memory cgroup; "" when the task has none
	seen uint64
}

func (s *Tasks) newOOMCounter(rec *Record, c Container) *oomCounter {
	o := &oomCounter{id: rec.ID, dir: memoryDir(c)}
	if o.dir == "" {
		s.log.Warn("task has no memory cgroup: no OOM events", "id", rec.ID)
		return o
	}
	n, err := cgroup.OOMKills(o.dir)
	if err != nil {
		s.log.Warn("read OOM kills: no OOM events", "id", rec.ID, "err", err)
		o.dir = ""
	}
	o.seen = n
	return o
}

// report sends an EventOOM for each OOM kill counted since the last call.
func (o *oomCounter) report(fn func(Event) error) error {
	if o.dir == "" {
		return nil
	}
	n, err := cgroup.OOMKills(o.dir)
	if err != nil {
		return nil // the cgroup went with the task
	}
	for ; o.seen < n; o.seen++ {
		if err := fn(Event{Kind: EventOOM, ID: o.id}); err != nil {
			return err
		}
	}
	return nil
}
