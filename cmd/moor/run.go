package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/reaper"
)

var runCommand = cli.Command{
	Name:      "run",
	Usage:     "create and start a task; in the foreground, wait for it and exit with its status",
	ArgsUsage: "<task-id>",
	Flags: append([]cli.Flag{
		cli.BoolFlag{Name: "detach, d", Usage: "return once the task runs"},
		cli.BoolFlag{Name: "keep", Usage: "do not delete the task after it exits"},
	}, createFlags...),
	Action: func(ctx *cli.Context) error {
		id, err := oneArg(ctx)
		if err != nil {
			return err
		}
		if ctx.Bool("detach") {
			tasks, err := newTasks(ctx, nil)
			if err != nil {
				return err
			}
			return createAndStart(ctx, tasks, id, nil)
		}
		return runForeground(ctx, id)
	},
}

// runForeground is the parent and reaper of the task's anchor: it forwards
// the signals it gets to the anchor and exits with the anchor's status.
// Its reaper is the process's one waiter: the task's hooks and helpers are
// started through it (lifecycle), so it hands their exits back to whoever
// started them and never takes them for orphans.
func runForeground(ctx *cli.Context, id string) error {
	rp := reaper.NewReaper()
	defer rp.Close()
	// Orphans of a task without its own PID namespace come to us.
	if err := reaper.BecomeSubreaper(); err != nil {
		logger.Warn("become subreaper", "err", err)
	}
	sigs := forwardableSignals()
	defer signal.Stop(sigs)
	tasks, err := newTasks(ctx, rp)
	if err != nil {
		return err
	}
	var tty *foregroundTTY
	if spec, err := lifecycle.LoadSpec(ctx.String("bundle")); err == nil && spec.Process != nil && spec.Process.Terminal {
		if tty, err = newForegroundTTY(); err != nil {
			return err
		}
		defer tty.Close()
	}
	if err := createAndStart(ctx, tasks, id, tty); err != nil {
		return err
	}
	exited := make(chan *lifecycle.Exit, 1)
	go func() {
		ex, err := tasks.Wait(context.Background(), id)
		if err != nil {
			logger.Warn("wait for task", "id", id, "err", err)
		}
		exited <- ex
	}()
	var ex *lifecycle.Exit
	for ex == nil {
		select {
		case sig := <-sigs:
			if sig == unix.SIGWINCH {
				tty.resize()
				continue
			}
			if err := tasks.Signal(id, sig.(unix.Signal), false); err != nil {
				logger.Debug("forward signal", "signal", sig, "err", err)
			}
		case ex = <-exited:
			if ex == nil {
				ex = &lifecycle.Exit{Code: 255}
			}
		}
	}
	if !ctx.Bool("keep") {
		if err := tasks.Delete(context.Background(), id, true); err != nil {
			return err
		}
	}
	if ex.Code != 0 {
		return exitCode(ex.Code)
	}
	return nil
}

// createAndStart is run's create and start; a task that fails to start is
// deleted, leaving nothing behind.
func createAndStart(ctx *cli.Context, tasks *lifecycle.Tasks, id string, tty *foregroundTTY) error {
	if _, err := createTask(ctx, tasks, id, tty); err != nil {
		return err
	}
	if tty != nil {
		if err := tty.attach(); err != nil {
			_ = tasks.Delete(context.Background(), id, true)
			return err
		}
	}
	if _, err := tasks.Start(context.Background(), id); err != nil {
		_ = tasks.Delete(context.Background(), id, true)
		return err
	}
	return nil
}

// forwardableSignals catches every signal a foreground moor passes on to
// its task: all but those the Go runtime or moor itself needs. SIGWINCH is
// caught too: run resizes the task's terminal with it.
func forwardableSignals() chan os.Signal {
	ch := make(chan os.Signal, 32)
	var sigs []os.Signal
	for s := unix.Signal(1); s <= unix.Signal(31); s++ {
		switch s {
		case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE, unix.SIGKILL, unix.SIGSTOP,
			unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTTIN, unix.SIGTTOU:
			continue
		}
		sigs = append(sigs, s)
	}
	signal.Notify(ch, sigs...)
	return ch
}
