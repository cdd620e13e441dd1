package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
)

var killCommand = cli.Command{
	Name:      "kill",
	Usage:     "send a signal to a task's anchor (default TERM)",
	ArgsUsage: "<task-id|anchor-pid> [signal]",
	Flags: []cli.Flag{
		cli.BoolFlag{Name: "all, a", Usage: "send the signal to every process of the task"},
	},
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() < 1 || ctx.NArg() > 2 {
			return fmt.Errorf("kill: want a task id or anchor pid and an optional signal")
		}
		sig := unix.SIGTERM
		if ctx.NArg() == 2 {
			var err error
			if sig, err = lifecycle.ParseSignal(ctx.Args().Get(1)); err != nil {
				return fmt.Errorf("kill: %w", err)
			}
		}
		tasks, err := newTasks(ctx, nil)
		if err != nil {
			return err
		}
		return tasks.Signal(ctx.Args().First(), sig, ctx.Bool("all"))
	},
}

var stopCommand = cli.Command{
	Name:      "stop",
	Usage:     "stop a task: its stop signal (TERM) to the anchor, then after --timeout SIGKILL to all its processes",
	ArgsUsage: "<task-id|anchor-pid>",
	Flags: []cli.Flag{
		cli.DurationFlag{Name: "timeout, t", Value: 10 * time.Second, Usage: "how long the anchor gets to exit"},
	},
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		return tasks.Stop(context.Background(), ref, ctx.Duration("timeout"))
	}),
}

var deleteCommand = cli.Command{
	Name:      "delete",
	Usage:     "delete a stopped task: its cgroup, mounts and state",
	ArgsUsage: "<task-id|anchor-pid>",
	Flags: []cli.Flag{
		cli.BoolFlag{Name: "force, f", Usage: "kill the task first if it runs; no error if it does not exist"},
	},
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		err := tasks.Delete(context.Background(), ref, ctx.Bool("force"))
		if ctx.Bool("force") && errors.Is(err, lifecycle.ErrNotExist) {
			return nil
		}
		return err
	}),
}

var pauseCommand = cli.Command{
	Name:      "pause",
	Usage:     "freeze every process of a running task",
	ArgsUsage: "<task-id|anchor-pid>",
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		return tasks.Pause(ref)
	}),
}

var resumeCommand = cli.Command{
	Name:      "resume",
	Usage:     "thaw a paused task",
	ArgsUsage: "<task-id|anchor-pid>",
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		return tasks.Resume(ref)
	}),
}
