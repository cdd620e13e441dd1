package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/reaper"
)

var execCommand = cli.Command{
	Name:      "exec",
	Usage:     "run another process in a running task",
	ArgsUsage: "<task-id|anchor-pid> [command [args...]]",
	Flags: []cli.Flag{
		cli.StringFlag{Name: "process, p", Usage: "the process as OCI process JSON (instead of a command)"},
		cli.BoolFlag{Name: "detach, d", Usage: "return once the process runs"},
		cli.StringFlag{Name: "pid-file", Usage: "write the process's PID to this file"},
		cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket to send the terminal's master end to"},
		cli.BoolFlag{Name: "tty, t", Usage: "give the process a terminal (needs --console-socket)"},
		cli.StringFlag{Name: "cwd", Usage: "working directory in the task"},
		cli.StringSliceFlag{Name: "env, e", Usage: "set an environment variable (NAME=value)"},
		cli.StringFlag{Name: "user, u", Usage: "uid[:gid] to run as"},
		cli.IntFlag{Name: "preserve-fds", Usage: "pass this many extra file descriptors (from 3 on)"},
	},
	SkipArgReorder: true,
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() < 1 {
			return fmt.Errorf("exec: want a task id or anchor pid")
		}
		ref := ctx.Args().First()
		var rp *reaper.Reaper
		if !ctx.Bool("detach") {
			rp = reaper.NewReaper()
			defer rp.Close()
		}
		tasks, err := newTasks(ctx, rp)
		if err != nil {
			return err
		}
		proc, err := execProcess(ctx, tasks, ref)
		if err != nil {
			return err
		}
		stdio := lifecycle.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
		if path := ctx.String("console-socket"); path != "" {
			sock, err := dialConsoleSocket(path)
			if err != nil {
				return err
			}
			defer sock.Close()
			stdio = lifecycle.IO{ConsoleSocket: sock}
		}
		var sigs chan os.Signal
		if rp != nil {
			sigs = forwardableSignals()
			defer signal.Stop(sigs)
		}
		ex, err := tasks.Exec(ref, proc, stdio, preservedFds(ctx.Int("preserve-fds")))
		if err != nil {
			return err
		}
		if path := ctx.String("pid-file"); path != "" {
			if err := writePidFile(path, ex.PID); err != nil {
				return err
			}
		}
		if rp == nil {
			return nil
		}
		for {
			select {
			case sig := <-sigs:
				_ = unix.Kill(ex.PID, sig.(unix.Signal)) // our unreaped child: the PID cannot be reused
			case r := <-ex.Done:
				if code := r.Code(); code != 0 {
					return exitCode(code)
				}
				return nil
			}
		}
	},
}

// execProcess builds the process to run: from --process, or from the
// command line over the task's own process (its env, cwd, user and
// capabilities), as runc does.
func execProcess(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) (*specs.Process, error) {
	if path := ctx.String("process"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("exec: read process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("exec: read process %s: %w", path, err)
		}
		return &p, nil
	}
	if ctx.NArg() < 2 {
		return nil, fmt.Errorf("exec: want a command after the task, or --process")
	}
	rec, err := tasks.Resolve(ref)
	if err != nil {
		return nil, err
	}
	spec, err := tasks.Store().LoadSpec(rec.Namespace, rec.ID)
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = ctx.Args().Tail()
	p.Terminal = ctx.Bool("tty")
	p.Env = append(append([]string(nil), p.Env...), ctx.StringSlice("env")...)
	if cwd := ctx.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	if u := ctx.String("user"); u != "" {
		uid, gid, _ := strings.Cut(u, ":")
		n, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("exec: --user %q: uid must be a number", u)
		}
		p.User.UID = uint32(n)
		if gid != "" {
			if n, err = strconv.ParseUint(gid, 10, 32); err != nil {
				return nil, fmt.Errorf("exec: --user %q: gid must be a number", u)
			}
			p.User.GID = uint32(n)
		}
	}
	return &p, nil
}
