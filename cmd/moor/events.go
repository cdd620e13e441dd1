package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/runc/types"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/lifecycle"
)

var eventsCommand = cli.Command{
	Name:      "events",
	Usage:     "print a task's cgroup statistics and OOM kills as runc's JSON events, one a line",
	ArgsUsage: "<task-id|anchor-pid>",
	Description: `Without --stats, a "stats" event every --interval and an "oom" event for each
OOM kill in the task's cgroup, until the task's anchor exits.`,
	Flags: []cli.Flag{
		cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "time between stats events"},
		cli.BoolFlag{Name: "stats", Usage: "print the task's stats once and exit"},
	},
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		interval := ctx.Duration("interval")
		if interval <= 0 {
			return errors.New("events: --interval must be greater than 0")
		}
		enc := json.NewEncoder(os.Stdout) // one event a line, as runc writes them
		if ctx.Bool("stats") {
			rec, err := tasks.Resolve(ref) // the ID for the event, when ref is a PID
			if err != nil {
				return err
			}
			st, err := tasks.Stats(rec.ID)
			if err != nil {
				return err
			}
			return enc.Encode(types.Event{Type: "stats", ID: rec.ID, Data: cgroup.RuncStats(st)})
		}
		return tasks.Events(context.Background(), ref, interval, func(ev lifecycle.Event) error {
			return enc.Encode(runcEvent(ev))
		})
	}),
}

// runcEvent is ev as `runc events` prints it.
func runcEvent(ev lifecycle.Event) types.Event {
	switch ev.Kind {
	case lifecycle.EventStats:
		return types.Event{Type: "stats", ID: ev.ID, Data: cgroup.RuncStats(ev.Stats)}
	case lifecycle.EventOOM:
		return types.Event{Type: "oom", ID: ev.ID}
	default:
		return types.Event{Type: fmt.Sprintf("event(%d)", int(ev.Kind)), ID: ev.ID}
	}
}
