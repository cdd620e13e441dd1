package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
)

var startCommand = cli.Command{
	Name:      "start",
	Usage:     "let a created task run its process",
	ArgsUsage: "<task-id|anchor-pid>",
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		_, err := tasks.StartCreated(context.Background(), ref) // OCI: a stopped task is not started again
		return err
	}),
}

var restartCommand = cli.Command{
	Name:      "restart",
	Usage:     "start a stopped or running task again: a new anchor, the same name (running: stopped first)",
	ArgsUsage: "<task-id|anchor-pid>",
	Flags: []cli.Flag{
		cli.DurationFlag{Name: "timeout, t", Value: 10 * time.Second, Usage: "for a running task: how long the stop signal gets before SIGKILL"},
	},
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		st, err := tasks.State(ref)
		if err != nil {
			return err
		}
		switch st.Status {
		case lifecycle.Running, lifecycle.Paused:
			bg, cancel := context.WithTimeout(context.Background(), ctx.Duration("timeout")+time.Minute)
			defer cancel()
			if err := tasks.Stop(bg, st.ID, ctx.Duration("timeout")); err != nil {
				return fmt.Errorf("restart: %w", err)
			}
		case lifecycle.Created, lifecycle.Stopped:
		default:
			return fmt.Errorf("restart task %s: status is %s, want created, running, paused or stopped: %w", st.ID, st.Status, lifecycle.ErrWrongStatus)
		}
		stdio := lifecycle.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
		_, err = tasks.Start(context.Background(), st.ID, lifecycle.WithIO(stdio))
		return err
	}),
}
