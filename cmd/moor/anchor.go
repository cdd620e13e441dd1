package main

import (
	"context"
	"errors"
	"flag"
	"os"

	"github.com/urfave/cli"

	"github.com/lf-edge/moor/anchor/vmm"
)

// anchorCommand is moor's own anchor, the fallback of the lean moor-anchor:
// both run vmm.Main, which parses the flags (--dir, --grace,
// --device-model, --poll, --debug).
var anchorCommand = cli.Command{
	Name:            "anchor",
	Usage:           "run as PID 1 of a hypervisor task: supervise its device model (set up by 'moor vm spec')",
	ArgsUsage:       "[--dir DIR] [--grace DURATION] [--device-model PATH] [--poll DURATION] [--debug]",
	Description:     vmm.Usage,
	SkipFlagParsing: true,
	Action: func(ctx *cli.Context) error {
		out, err := vmm.Main(context.Background(), "moor anchor", ctx.Args(), os.Stderr, ctx.GlobalBool("debug"))
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if code := out.ExitCode(); code != 0 {
			return exitCode(code)
		}
		return nil
	},
}
