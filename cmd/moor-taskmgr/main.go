// Command moor-taskmgr is an example task manager, as EVE's domainmgr
// would be written against moor: it runs the apps of a directory as
// tasks and keeps them running (see package taskmgr). This package only
// parses flags, runs it and turns errors into exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/lf-edge/moor/internal/taskmain"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/reaper"
	"github.com/lf-edge/moor/taskmgr"
)

func main() { taskmain.Main(func() int { return run(os.Args[1:]) }) }

// run is moor-taskmgr: it returns the exit status.
func run(args []string) int {
	fs := flag.NewFlagSet("moor-taskmgr", flag.ContinueOnError)
	var opts taskmgr.Options
	fs.StringVar(&opts.Apps, "apps", "", "apps directory: one subdirectory per app (root volume and APP.json)")
	fs.StringVar(&opts.Root, "root", lifecycle.DefaultRoot, "state root, shared with moor")
	fs.StringVar(&opts.Namespace, "namespace", taskmgr.DefaultNamespace, "task namespace of the apps")
	fs.StringVar(&opts.CgroupParent, "cgroup-parent", "/eve/apps", "absolute cgroup path; each app runs in <parent>/<name>")
	fs.StringVar(&opts.Status, "status", "", "status file (JSON), rewritten whenever an app changes")
	format := fs.String("log-format", "text", "log format: text or json")
	debug := fs.Bool("debug", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "moor-taskmgr: unexpected arguments %q\n", fs.Args())
		return 2
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch *format {
	case "text":
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, hopts))
	case "json":
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	default:
		fmt.Fprintf(os.Stderr, "moor-taskmgr: --log-format %q: want text or json\n", *format)
		return 2
	}
	if err := serve(opts); err != nil {
		fmt.Fprintf(os.Stderr, "moor-taskmgr: %v\n", err)
		return 1
	}
	return 0
}

// serve runs the manager as the process's one reaper, a child subreaper:
// it reaps what the apps' processes leave too.
func serve(opts taskmgr.Options) error {
	rp, release, err := reaper.Own(func(reaper.Reaped) {})
	if err != nil {
		return err
	}
	defer release()
	opts.Reaper = rp
	m, err := taskmgr.New(opts)
	if err != nil {
		return err
	}
	return m.Run(context.Background())
}
