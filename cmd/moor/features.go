package main

import (
	"fmt"

	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
)

var featuresCommand = cli.Command{
	Name:  "features",
	Usage: "print what moor supports on this host, as OCI features JSON",
	Description: `Security modules, seccomp and cgroup support are probed on this host: a
feature is reported enabled when this build has it and the host offers it.`,
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() != 0 {
			return fmt.Errorf("features: takes no arguments")
		}
		host, err := lifecycle.ProbeHost("/")
		if err != nil {
			return err
		}
		return printJSON(lifecycle.FeatureDoc(host, version))
	},
}
