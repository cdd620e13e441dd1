package main

import (
	"context"

	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
)

var startCommand = cli.Command{
	Name:      "start",
	Usage:     "let a created task run its process",
	ArgsUsage: "<task-id|anchor-pid>",
	Action: taskAction(func(ctx *cli.Context, sup *lifecycle.Tasks, ref string) error {
		_, err := sup.Start(context.Background(), ref)
		return err
	}),
}
