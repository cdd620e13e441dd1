package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/docker/go-units"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"
)

var updateCommand = cli.Command{
	Name:      "update",
	Usage:     "change a task's memory, CPU and pids limits",
	ArgsUsage: "<task-id|anchor-pid>",
	Description: `Limits come from --resources (OCI linux.resources JSON, "-" for stdin)
and the flags, which win. Only what is given changes.`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "resources, r", Usage: "OCI linux.resources JSON file, or - for stdin"},
		cli.StringFlag{Name: "memory", Usage: "memory limit, e.g. 256MiB"},
		cli.StringFlag{Name: "memory-swap", Usage: "memory+swap limit, e.g. 512MiB, or -1"},
		cli.Uint64Flag{Name: "cpu-shares", Usage: "CPU shares"},
		cli.Int64Flag{Name: "cpu-quota", Usage: "CPU quota per period, microseconds"},
		cli.Uint64Flag{Name: "cpu-period", Usage: "CPU period, microseconds"},
		cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs the task may use, e.g. 0-1"},
		cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes"},
	},
	Action: func(ctx *cli.Context) error {
		ref, err := oneArg(ctx)
		if err != nil {
			return err
		}
		r, err := resourcesFrom(ctx)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		tasks, err := newTasks(ctx, nil)
		if err != nil {
			return err
		}
		return tasks.Update(ref, r)
	},
}

func resourcesFrom(ctx *cli.Context) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if path := ctx.String("resources"); path != "" {
		var in io.Reader = os.Stdin
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			in = f
		}
		if err := json.NewDecoder(in).Decode(r); err != nil {
			return nil, fmt.Errorf("--resources: %w", err)
		}
	}
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	for flag, dst := range map[string]**int64{"memory": &r.Memory.Limit, "memory-swap": &r.Memory.Swap} {
		if v := ctx.String(flag); v != "" {
			n := int64(-1)
			if v != "-1" {
				var err error
				if n, err = units.RAMInBytes(v); err != nil {
					return nil, fmt.Errorf("--%s %q: %w", flag, v, err)
				}
			}
			*dst = &n
		}
	}
	if ctx.IsSet("cpu-shares") {
		v := ctx.Uint64("cpu-shares")
		r.CPU.Shares = &v
	}
	if ctx.IsSet("cpu-quota") {
		v := ctx.Int64("cpu-quota")
		r.CPU.Quota = &v
	}
	if ctx.IsSet("cpu-period") {
		v := ctx.Uint64("cpu-period")
		r.CPU.Period = &v
	}
	if v := ctx.String("cpuset-cpus"); v != "" {
		r.CPU.Cpus = v
	}
	if ctx.IsSet("pids-limit") {
		v := ctx.Int64("pids-limit")
		r.Pids = &specs.LinuxPids{Limit: &v}
	}
	return r, nil
}
