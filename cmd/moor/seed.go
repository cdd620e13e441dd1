package main

import (
	"fmt"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/rootfs"
)

// seedFlags choose where `moor spec` takes the task's spec from.
var seedFlags = []cli.Flag{
	cli.StringFlag{Name: "seed", Usage: "root volume: a directory with rootfs/ and config.json or image-config.json"},
	cli.StringFlag{Name: "override", Usage: "APP.json: the app's own settings, which win over the seed"},
	cli.StringFlag{Name: "loader", Usage: "loader bundle whose config.json is the template (for tasks without a spec of their own)"},
	cli.BoolFlag{Name: "host-root", Usage: "no root volume: the task gets the host's root, read-only"},
}

// seeded reports whether `moor spec` was asked for a seeded spec.
func seeded(ctx *cli.Context) bool {
	return ctx.String("seed") != "" || ctx.String("override") != "" || ctx.String("loader") != "" || ctx.Bool("host-root")
}

// seededSpec builds the spec from the seed flags. --override alone lays
// the app's settings over the default spec.
func seededSpec(ctx *cli.Context) (*specs.Spec, error) {
	src := rootfs.Source{
		Volume:   ctx.String("seed"),
		Loader:   ctx.String("loader"),
		HostRoot: ctx.Bool("host-root"),
		Template: rootfs.DefaultSpec(),
	}
	if path := ctx.String("override"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--override: %w", err)
		}
		defer f.Close()
		if src.App, err = rootfs.ParseApp(f); err != nil {
			return nil, fmt.Errorf("--override %s: %w", path, err)
		}
	}
	if src.Volume == "" && src.Loader == "" && !src.HostRoot {
		s, err := rootfs.ApplyApp(src.Template, src.App)
		if err != nil {
			return nil, fmt.Errorf("--override: %w", err)
		}
		return s, nil
	}
	return rootfs.Build(src)
}
