package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/docker/go-units"
	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/nsutil"
	"github.com/lf-edge/moor/supervisor"
)

// initialPidNSInode is the inode of the host's own PID namespace.
const initialPidNSInode = 0xEFFFFFFC

var superviseCommand = cli.Command{
	Name:  "supervise",
	Usage: "boot a linuxkit-style containers tree and keep its services running (PID 1 or a subreaper)",
	Description: `Runs DIR/onboot/* one at a time to completion, then starts DIR/services/*
and keeps them, in task namespace services.linuxkit (unless --namespace says
otherwise). Signals: TERM, INT, PWR shut down in order; HUP re-reads DIR;
USR1 writes a status dump. As PID 1 with no arguments moor runs
"supervise --containers /containers".`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "containers", Value: "/containers", Usage: "the containers tree"},
		cli.StringFlag{Name: "log-dir", Value: "/var/log/moor", Usage: "where each task's output goes (<id>.log)"},
		cli.StringFlag{Name: "log-max-size", Value: "1MiB", Usage: "rotate a task's log past this size"},
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
		m, err := supervisor.NewManager(supervisor.ManagerOptions{
			Containers:   ctx.String("containers"),
			Root:         ctx.GlobalString("root"),
			Namespace:    ns,
			Logs:         supervisor.TaskLogs{Dir: ctx.String("log-dir"), MaxBytes: maxSize, Keep: ctx.Int("log-keep")},
			Logger:       logger,
			CgroupParent: ctx.GlobalString("cgroup-parent"),
		})
		if err != nil {
			return err
		}
		if err := m.Run(context.Background()); err != nil {
			return err
		}
		if os.Getpid() == 1 && hostPidNS() {
			unix.Sync()
			return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		}
		return nil
	},
}

// hostPidNS reports whether this process is in the host's PID namespace:
// only there does PID 1 power the machine off.
func hostPidNS() bool {
	ino, err := nsutil.Inode("/proc/self/ns/pid")
	return err == nil && ino == initialPidNSInode
}
