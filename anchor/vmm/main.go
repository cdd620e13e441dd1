package vmm

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/lf-edge/moor/devicemodel"
)

// Usage says what the anchor program does; moor-anchor and moor anchor
// print it.
const Usage = `Starts qemu (or drives xl) for the VM described in <dir>/vm.json, lets the
guest run and publishes its run state in <dir>/runstate.json. SIGTERM powers the
guest down through ACPI and stops it hard after --grace; SIGUSR1 pauses and
SIGUSR2 resumes it. Exits 0 when the guest powered off, 2 when it or its device
model crashed, 3 when it had to be stopped hard, 1 when it could not start.
A container app's VM (moor vm spec --app) passes SIGTERM, SIGINT, SIGHUP and
SIGQUIT on to the app instead and exits with the app's status (137 when the
guest had to be stopped hard, 255 when it ended without reporting one).`

// Main is the anchor program, the same for the lean moor-anchor binary and
// moor's anchor verb: it parses args (the flags, without the program's
// name), reads <dir>/vm.json, runs the VM and logs to stderr. debug turns
// on debug logs as --debug does. It returns how the VM ended, whose
// ExitCode is the exit status, and flag.ErrHelp when help was asked
// for. Errors are logged (or printed, for bad flags) already.
func Main(ctx context.Context, name string, args []string, stderr io.Writer, debug bool) (devicemodel.Outcome, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [flags]\n\n%s\n\nflags:\n", name, Usage)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", devicemodel.TaskRunDir, "the run directory (holds vm.json)")
	grace := fs.Duration("grace", devicemodel.DefaultGrace, "wait between ACPI powerdown and hard stop")
	deviceModel := fs.String("device-model", "", "qemu's or xl's path (default: looked up in PATH)")
	poll := fs.Duration("poll", time.Second, "how often xl list is polled (xen)")
	fs.BoolVar(&debug, "debug", debug, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return devicemodel.Outcome{}, err
	}
	if fs.NArg() != 0 {
		err := fmt.Errorf("%s takes no arguments, got %q", name, fs.Args())
		fmt.Fprintln(stderr, err)
		return devicemodel.Outcome{}, err
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("component", "anchor")
	out, err := runDir(ctx, Options{Dir: *dir, Grace: *grace, DeviceModel: *deviceModel, Poll: *poll, Logger: log})
	if err != nil {
		log.Error("anchor failed", "err", err)
	}
	return out, err
}

// runDir reads the VM description of the run directory and runs it.
func runDir(ctx context.Context, o Options) (devicemodel.Outcome, error) {
	f, err := os.Open(filepath.Join(o.Dir, devicemodel.VMFile))
	if err != nil {
		return devicemodel.Outcome{}, fmt.Errorf("read vm description: %w", err)
	}
	o.VM, err = devicemodel.Parse(f, nil)
	f.Close()
	if err != nil {
		return devicemodel.Outcome{}, err
	}
	return Run(ctx, o)
}
