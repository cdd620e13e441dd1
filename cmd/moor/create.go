package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/urfave/cli"

	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/lifecycle"
)

var createFlags = []cli.Flag{
	cli.StringFlag{Name: "bundle, b", Value: ".", Usage: "bundle directory (holds config.json)"},
	cli.StringFlag{Name: "pid-file", Usage: "write the anchor's PID to this file"},
	cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket to send the terminal's master end to"},
	cli.IntFlag{Name: "preserve-fds", Usage: "pass this many extra file descriptors (from 3 on) to the task"},
	cli.BoolFlag{Name: "no-pivot", Usage: "accepted for runc compatibility; moor always uses pivot_root"},
	cli.BoolFlag{Name: "no-new-keyring", Usage: "accepted for runc compatibility"},
}

var createCommand = cli.Command{
	Name:      "create",
	Usage:     "create a task: namespaces, cgroup and an anchor that waits for start",
	ArgsUsage: "<task-id>",
	Flags:     createFlags,
	Action: func(ctx *cli.Context) error {
		id, err := oneArg(ctx)
		if err != nil {
			return err
		}
		tasks, err := newTasks(ctx, nil)
		if err != nil {
			return err
		}
		_, err = createTask(ctx, tasks, id, nil)
		return err
	},
}

// createTask is create's work, shared with run. A foreground run with a
// terminal passes its own console socket in tty.
func createTask(ctx *cli.Context, tasks *lifecycle.Tasks, id string, tty *foregroundTTY) (*lifecycle.Record, error) {
	bundle := ctx.String("bundle")
	spec, err := lifecycle.LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	stdio := lifecycle.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if tty != nil {
		stdio = lifecycle.IO{ConsoleSocket: tty.remote}
	} else if path := ctx.String("console-socket"); path != "" {
		sock, err := dialConsoleSocket(path)
		if err != nil {
			return nil, err
		}
		defer sock.Close()
		stdio = lifecycle.IO{ConsoleSocket: sock}
	}
	rec, err := tasks.Create(context.Background(), lifecycle.CreateOptions{
		ID: id, Bundle: bundle, Spec: spec, IO: stdio, ExtraFiles: preservedFds(ctx.Int("preserve-fds")),
	})
	if err != nil {
		return nil, err
	}
	if path := ctx.String("pid-file"); path != "" {
		if err := writePidFile(path, rec.Anchor.PID); err != nil {
			_ = tasks.Delete(context.Background(), id, true)
			return nil, err
		}
	}
	return rec, nil
}

func dialConsoleSocket(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return f, nil
}

func preservedFds(n int) []*os.File {
	var files []*os.File
	for fd := 3; fd < 3+n; fd++ {
		files = append(files, os.NewFile(uintptr(fd), "preserved-fd-"+strconv.Itoa(fd)))
	}
	return files
}

// writePidFile writes the PID atomically, as runc does.
func writePidFile(path string, pid int) error {
	if err := atomicfile.Write(path, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}
