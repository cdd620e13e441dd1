package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/docker/go-units"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/supervisor"
	"github.com/lf-edge/moor/supervisor/machine"
)

var superviseCommand = cli.Command{
	Name:  "supervise",
	Usage: "boot a linuxkit-style containers tree and keep its services running (PID 1 or a subreaper)",
	Description: `Runs DIR/onboot/* one at a time to completion, then starts DIR/services/*
and keeps them, in task namespace services.linuxkit (unless --namespace says
otherwise). Signals: TERM, INT, PWR shut down in order; HUP re-reads DIR;
USR1 writes a status dump. As PID 1 with no arguments moor runs
"supervise --containers /containers".

As PID 1 of the initial PID namespace (the kernel's /init) it is the
machine's init: it mounts /proc, /sys, /dev, /run, /tmp and the cgroup
hierarchies, logs to /dev/console and, without --log-dir, sends each
task's output there prefixed with its name; SIGTERM, SIGINT (Ctrl-Alt-Del),
SIGPWR and the power button power the machine off after the shutdown,
SIGUSR2 restarts it.`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "containers", Value: "/containers", Usage: "the containers tree"},
		cli.StringFlag{Name: "log-dir", Value: "/var/log/moor", Usage: "where each task's output goes (<id>.log); a machine's init without it sends the output to the console"},
		cli.StringFlag{Name: "log-max-size", Value: "1MiB", Usage: "a task's log never grows past this size: it is rotated there"},
		cli.IntFlag{Name: "log-keep", Value: 3, Usage: "rotated logs kept per task"},
	},
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() != 0 {
			return fmt.Errorf("supervise: takes no arguments")
		}
		maxSize, err := units.RAMInBytes(ctx.String("log-max-size"))
		if err != nil || maxSize <= 0 {
			return fmt.Errorf("supervise: --log-max-size %q: want a size such as 1MiB", ctx.String("log-max-size"))
		}
		if !ctx.GlobalIsSet("log") && !ctx.GlobalBool("debug") {
			// A supervisor's own log is its record of the system: keep info.
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: lowerLevel}))
		}
		ns := supervisor.SystemNamespace
		if ctx.GlobalIsSet("namespace") {
			ns = ctx.GlobalString("namespace")
		}
		opts := supervisor.ManagerOptions{
			Containers:   ctx.String("containers"),
			Root:         ctx.GlobalString("root"),
			Namespace:    ns,
			Logs:         supervisor.TaskLogs{Dir: ctx.String("log-dir"), MaxBytes: maxSize, Keep: ctx.Int("log-keep")},
			Logger:       logger,
			CgroupParent: ctx.GlobalString("cgroup-parent"),
		}
		if os.Getpid() == 1 {
			// The machine's init never returns; PID 1 of a PID namespace
			// gets ErrNotInit and supervises as any other process.
			err := machine.Boot(machine.Options{Manager: opts, Console: !ctx.IsSet("log-dir"), Debug: ctx.GlobalBool("debug")})
			if !errors.Is(err, machine.ErrNotInit) {
				return err
			}
		}
		m, err := supervisor.NewManager(opts)
		if err != nil {
			return err
		}
		return m.Run(context.Background())
	},
}
