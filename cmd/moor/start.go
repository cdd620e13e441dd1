package main

import (
	"context"

	"github.com/urfave/cli"
)

var startCommand = cli.Command{
	Name:      "start",
	Usage:     "let a created task run its process",
	ArgsUsage: "<task-id|anchor-pid>",
	Action: func(ctx *cli.Context) error {
		ref, err := oneArg(ctx)
		if err != nil {
			return err
		}
		sup, err := newSupervisor(ctx, nil)
		if err != nil {
			return err
		}
		_, err = sup.Start(context.Background(), ref)
		return err
	},
}
