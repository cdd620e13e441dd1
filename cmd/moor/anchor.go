package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli"

	"github.com/lf-edge/moor/anchor/vmm"
	"github.com/lf-edge/moor/devicemodel"
)

var anchorCommand = cli.Command{
	Name:  "anchor",
	Usage: "run as PID 1 of a hypervisor task: supervise its device model (set up by 'moor vm spec')",
	Description: `Starts qemu (or drives xl) for the VM described in <dir>/vm.json, lets the
guest run and publishes its run state in <dir>/runstate.json. SIGTERM powers the
guest down through ACPI and stops it hard after --grace; SIGUSR1 pauses and
SIGUSR2 resumes it. Exits 0 when the guest powered off, 2 when it or its device
model crashed, 3 when it had to be stopped hard, 1 when it could not start.`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "dir", Value: devicemodel.TaskRunDir, Usage: "the run directory (holds vm.json)"},
		cli.DurationFlag{Name: "grace", Value: devicemodel.DefaultGrace, Usage: "wait between ACPI powerdown and hard stop"},
		cli.StringFlag{Name: "device-model", Usage: "qemu's or xl's path (default: looked up in PATH)"},
		cli.DurationFlag{Name: "poll", Value: time.Second, Usage: "how often xl list is polled (xen)"},
	},
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() != 0 {
			return fmt.Errorf("anchor: takes no arguments")
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		if ctx.GlobalBool("debug") {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		log = log.With("component", "anchor")
		dir := ctx.String("dir")
		f, err := os.Open(filepath.Join(dir, devicemodel.VMFile))
		if err != nil {
			return fmt.Errorf("anchor: %w", err)
		}
		vm, err := devicemodel.Parse(f, nil)
		f.Close()
		if err != nil {
			return fmt.Errorf("anchor: %w", err)
		}
		end, err := vmm.Run(context.Background(), vmm.Options{
			VM: vm, Dir: dir, Grace: ctx.Duration("grace"), DeviceModel: ctx.String("device-model"),
			Poll: ctx.Duration("poll"), Logger: log,
		})
		if err != nil {
			log.Error("anchor failed", "err", err)
			return exitCode(devicemodel.ExitCode(end))
		}
		if code := devicemodel.ExitCode(end); code != 0 {
			return exitCode(code)
		}
		return nil
	},
}
