package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/rootfs"
)

var specCommand = cli.Command{
	Name:  "spec",
	Usage: "write a default config.json into the bundle",
	Description: `Writes a config.json that runs "sh" in ./rootfs, read-only, in new
namespaces, with a 256 MiB memory limit, 1024 CPU shares and at most 1024
processes: a task moor accepts as it is. An existing config.json is kept.

With --seed VOLUME the spec comes from the root volume instead: its
config.json as it is, else its image-config.json laid over the default.
--loader BUNDLE takes a loader bundle's spec as the template (a --seed
volume is then mounted read-only at /mnt); --host-root gives the task the
host's root, read-only. --override APP.json lays the app's own settings
over the result (see the README for the format).`,
	Flags: append([]cli.Flag{
		cli.StringFlag{Name: "bundle, b", Value: ".", Usage: "bundle directory"},
	}, seedFlags...),
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() != 0 {
			return fmt.Errorf("spec: takes no arguments")
		}
		path := filepath.Join(ctx.String("bundle"), "config.json")
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("spec: %s exists already", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spec: %w", err)
		}
		spec := rootfs.DefaultSpec()
		if seeded(ctx) {
			s, err := seededSpec(ctx)
			if err != nil {
				return fmt.Errorf("spec: %w", err)
			}
			// A seeded spec is a user-defined task's: EVE's rule holds.
			if err := lifecycle.RequireMinimumSpec(s); err != nil {
				return fmt.Errorf("spec: %w", err)
			}
			spec = s
		}
		b, err := json.MarshalIndent(spec, "", "\t")
		if err != nil {
			return fmt.Errorf("spec: %w", err)
		}
		if seeded(ctx) { // made only for a spec that is good: a refused one leaves nothing
			if err := os.MkdirAll(ctx.String("bundle"), 0o755); err != nil {
				return fmt.Errorf("spec: %w", err)
			}
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("spec: %w", err)
		}
		return nil
	},
}
