package vmm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/xl"
	"github.com/lf-edge/moor/reaper"
)

// xlBackend drives a Xen domain through xl and polls xl list for its state:
// the domain, not a process, is the device model here.
type xlBackend struct {
	o      Options
	events chan<- event
	drv    *xl.Driver
}

func newXL(o Options, r *reaper.Reaper, events chan<- event) *xlBackend {
	bin := o.DeviceModel
	if bin == "" {
		bin = "xl"
	}
	run := &reapedRunner{bin: bin, reaper: r, log: o.Logger}
	return &xlBackend{o: o, events: events, drv: &xl.Driver{Run: run, Name: o.VM.Name}}
}

func (x *xlBackend) pid() int { return 0 }

// start destroys a domain an earlier run left, creates the domain paused,
// unpauses it and starts polling.
func (x *xlBackend) start(ctx context.Context) error {
	cfg := filepath.Join(x.o.Dir, "xl.cfg")
	if err := os.WriteFile(cfg, xl.Config(x.o.VM), 0o644); err != nil {
		return fmt.Errorf("write xl config: %w", err)
	}
	if _, err := x.drv.State(ctx); err == nil {
		x.o.Logger.Warn("destroying the domain of an earlier run", "name", x.o.VM.Name)
		if err := x.drv.Destroy(ctx); err != nil {
			return err
		}
	} else if !errors.Is(err, xl.ErrNoDomain) {
		return err
	}
	if err := x.drv.Create(ctx, cfg); err != nil {
		return err
	}
	if err := x.drv.Unpause(ctx); err != nil {
		_ = x.drv.Destroy(ctx)
		return err
	}
	x.events <- event{state: devicemodel.GuestRunning}
	go x.poll()
	return nil
}

// poll reports the domain's state until it is gone.
func (x *xlBackend) poll() {
	t := time.NewTicker(x.o.Poll)
	defer t.Stop()
	for range t.C {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		dom, err := x.drv.State(ctx)
		cancel()
		switch {
		case errors.Is(err, xl.ErrNoDomain):
			x.events <- event{gone: true, clean: true, state: devicemodel.GuestShutdown, reason: "domain is gone"}
			return
		case err != nil:
			x.o.Logger.Warn("poll domain", "err", err)
		default:
			reason := ""
			if dom.GuestState() == devicemodel.GuestCrashed {
				reason = "domain crashed"
			}
			x.events <- event{state: dom.GuestState(), reason: reason}
		}
	}
}

func (x *xlBackend) powerdown(ctx context.Context) error { return x.drv.Shutdown(ctx) }
func (x *xlBackend) stop(ctx context.Context) error      { return x.drv.Destroy(ctx) }
func (x *xlBackend) pause(ctx context.Context) error     { return x.drv.Pause(ctx) }
func (x *xlBackend) resume(ctx context.Context) error    { return x.drv.Unpause(ctx) }

func (x *xlBackend) kill() {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := x.drv.Destroy(ctx); err != nil {
		x.o.Logger.Warn("destroy domain", "err", err)
	}
}

// reapedRunner runs xl as a child of the anchor under its one reaper. Its
// output goes to memory files, not pipes: xl create leaves a daemon behind
// that would hold a pipe open.
type reapedRunner struct {
	bin    string
	reaper *reaper.Reaper
	log    interface{ Debug(string, ...any) }
}

func (r *reapedRunner) Run(ctx context.Context, args ...string) ([]byte, error) {
	stdout, err := reaper.MemFile("xl-stdout")
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := reaper.MemFile("xl-stderr")
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	path, err := exec.LookPath(r.bin)
	if err != nil {
		return nil, fmt.Errorf("find xl: %w", err)
	}
	cmd := &exec.Cmd{Path: path, Args: append([]string{r.bin}, args...), Stdout: stdout, Stderr: stderr}
	done := make(chan reaper.Reaped, 1)
	if err := r.reaper.Start(cmd, func(rp reaper.Reaped) { done <- rp }); err != nil {
		return nil, err
	}
	var rp reaper.Reaped
	select {
	case rp = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(unix.SIGKILL) // not reaped yet: the PID is still ours
		<-done
		return nil, fmt.Errorf("xl %s: %w", strings.Join(args, " "), ctx.Err())
	}
	out, _ := reaper.ReadAll(stdout)
	errOut, _ := reaper.ReadAll(stderr)
	r.log.Debug("xl", "args", args, "code", rp.Code())
	if rp.Code() != 0 {
		return out, xl.NewExitError(args, syscall.WaitStatus(rp.Status), errOut)
	}
	return out, nil
}
