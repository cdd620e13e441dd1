package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/reaper"
)

// version is set at build time.
var version = "dev"

// logger is the one logger of this run; set in before.
var logger = slog.New(slog.NewTextHandler(io.Discard, nil))

func newApp() *cli.App {
	app := cli.NewApp()
	app.Name = "moor"
	app.Usage = "a task supervisor for edge devices, with runc's command line"
	app.Version = version
	app.Flags = []cli.Flag{
		cli.StringFlag{Name: "root", Value: lifecycle.DefaultRoot, Usage: "directory of task state"},
		cli.StringFlag{Name: "namespace, n", Value: lifecycle.DefaultNamespace, Usage: "task namespace"},
		cli.StringFlag{Name: "log", Usage: "write the log to this file instead of stderr"},
		cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
		cli.BoolFlag{Name: "debug", Usage: "log debug messages"},
		cli.BoolFlag{Name: "systemd-cgroup", Usage: "use systemd's cgroup driver (only where systemd runs)"},
		cli.StringFlag{Name: "cgroup-parent", Usage: "confine every task's cgroup below this absolute cgroup path (relative cgroupsPaths are placed under it; / confines nothing)"},
		cli.BoolFlag{Name: "require-minimum-spec", Usage: "hold created tasks to the minimum viable spec of a user-defined task (root, process.args, memory limit, CPU)"},
	}
	app.Before = setupLogging
	app.Commands = []cli.Command{
		specCommand, createCommand, startCommand, restartCommand, stateCommand, killCommand,
		deleteCommand, runCommand, listCommand, psCommand, execCommand,
		pauseCommand, resumeCommand, featuresCommand, eventsCommand, stopCommand, superviseCommand, initramfsCommand, updateCommand,
		anchorCommand, vmCommand,
		infoCommand, hookCommand,
	}
	return app
}

// setupLogging points moor's and libcontainer's logs at --log in
// --log-format. JSON lines carry lower-case levels and "msg", as
// containerd's runc client reads them.
func setupLogging(ctx *cli.Context) error {
	var out io.Writer = os.Stderr
	if path := ctx.GlobalString("log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		out = f
		logToFile = true
	}
	level := slog.LevelInfo
	logrus.SetLevel(logrus.InfoLevel)
	if ctx.GlobalBool("debug") {
		level = slog.LevelDebug
		logrus.SetLevel(logrus.DebugLevel)
	}
	if ctx.GlobalString("log") == "" && !ctx.GlobalBool("debug") {
		level = slog.LevelWarn // a terminal user sees warnings and errors only
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: lowerLevel}
	logrus.SetOutput(out)
	switch format := ctx.GlobalString("log-format"); format {
	case "text":
		logger = slog.New(slog.NewTextHandler(out, opts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(out, opts))
		logrus.SetFormatter(&logrus.JSONFormatter{})
	default:
		return fmt.Errorf("--log-format %q: want text or json", format)
	}
	return nil
}

func lowerLevel(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
	}
	return a
}

// logToFile is set when --log names a file: errors go there as well as to
// stderr, where containerd's runc client and a person each look.
var logToFile bool

func logError(err error) {
	if logToFile {
		logger.Error(err.Error())
	}
}

// newTasks makes the task library (lifecycle.Tasks) a verb works through.
func newTasks(ctx *cli.Context, reaper *reaper.Reaper) (*lifecycle.Tasks, error) {
	return lifecycle.New(lifecycle.Options{
		Root:          ctx.GlobalString("root"),
		Namespace:     ctx.GlobalString("namespace"),
		Logger:        logger,
		SystemdCgroup: ctx.GlobalBool("systemd-cgroup"),
		AnySpec:       !ctx.GlobalBool("require-minimum-spec"),
		CgroupParent:  ctx.GlobalString("cgroup-parent"),
		HookRunner:    hookRunner(),
		Reaper:        reaper,
	})
}

// oneArg returns the verb's single argument, a task ID or anchor PID.
func oneArg(ctx *cli.Context) (string, error) {
	if ctx.NArg() != 1 {
		return "", fmt.Errorf("%s: want exactly one task id or anchor pid, got %d arguments", ctx.Command.Name, ctx.NArg())
	}
	return ctx.Args().First(), nil
}

// taskAction is the Action of a verb whose one argument is a task: it
// checks the argument and makes the Tasks first.
func taskAction(fn func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error) func(*cli.Context) error {
	return func(ctx *cli.Context) error {
		ref, err := oneArg(ctx)
		if err != nil {
			return err
		}
		tasks, err := newTasks(ctx, nil)
		if err != nil {
			return err
		}
		return fn(ctx, tasks, ref)
	}
}

// hookRunner is this moor binary, which runs hooks with the status of
// their moment (the hook verb), or "" when it cannot be found.
func hookRunner() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	return self
}
