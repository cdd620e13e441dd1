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
model crashed, 3 when it had to be stopped hard, 1 when it could not start.`

// Main is the anchor program, the same for the lean moor-anchor binary and
// moor's anchor verb: it parses args (the flags, without the program's
// name), reads <dir>/vm.json, runs the VM and logs to stderr. debug turns
// on debug logs as --debug does. It returns how the VM ended, which
// devicemodel.ExitCode makes the exit status, and flag.ErrHelp when help
// was asked for. Errors are logged (or printed, for bad flags) already.
func Main(ctx context.Context, name string, args []string, stderr io.Writer, debug bool) (devicemodel.End, error) {
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
		return "", err
	}
	if fs.NArg() != 0 {
		err := fmt.Errorf("%s takes no arguments, got %q", name, fs.Args())
		fmt.Fprintln(stderr, err)
		return "", err
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("component", "anchor")
	end, err := runDir(ctx, Options{Dir: *dir, Grace: *grace, DeviceModel: *deviceModel, Poll: *poll, Logger: log})
	if err != nil {
		log.Error("anchor failed", "err", err)
	}
	return end, err
}

// runDir reads the VM description of the run directory and runs it.
func runDir(ctx context.Context, o Options) (devicemodel.End, error) {
	f, err := os.Open(filepath.Join(o.Dir, devicemodel.VMFile))
	if err != nil {
		return "", fmt.Errorf("read vm description: %w", err)
	}
	o.VM, err = devicemodel.Parse(f, nil)
	f.Close()
	if err != nil {
		return "", err
	}
	return Run(ctx, o)
}
