package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Daemon is a running private containerd.
type Daemon struct {
	Layout
	bin  string // Options.Bin
	cmd  *exec.Cmd
	done chan struct{} // closed once the daemon has been waited for
	err  error         // its wait status, once done is closed
}

// ErrExited reports a daemon that exited before it answered.
var ErrExited = errors.New("containerd exited")

// pollEvery is how often Start asks the daemon whether it answers.
const pollEvery = 20 * time.Millisecond

// Start writes the config, starts containerd (its output to LogFile) and
// returns once `ctr version` answers on its socket; it fails when ctx ends
// first or the daemon exits, and leaves no daemon behind then.
func Start(ctx context.Context, o Options) (*Daemon, error) {
	cfg, err := Config(o)
	if err != nil {
		return nil, err
	}
	l := Layout(o.Dir)
	for _, d := range []string{l.Root(), l.State(), l.Temp(), l.CNIDir() + "/bin", l.CNIDir() + "/conf"} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("make containerd dir: %w", err)
		}
	}
	if err := os.WriteFile(l.ConfigFile(), cfg, 0o644); err != nil {
		return nil, fmt.Errorf("write containerd config: %w", err)
	}
	logf, err := os.OpenFile(l.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open containerd log: %w", err)
	}
	defer logf.Close()
	d := &Daemon{Layout: l, bin: o.Bin, done: make(chan struct{})}
	cmd := exec.Command(d.Binary("containerd"), "--config", l.ConfigFile())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "TMPDIR="+l.Temp())
	if o.Bin != "" {
		// containerd looks its shims up in PATH first.
		cmd.Env = append(cmd.Env, "PATH="+o.Bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	d.cmd = cmd
	go func() { d.err = cmd.Wait(); close(d.done) }()
	if err := d.waitReady(ctx); err != nil {
		_ = d.Stop()
		return nil, err
	}
	return d, nil
}

// waitReady polls `ctr version` until it answers.
func (d *Daemon) waitReady(ctx context.Context) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		out, err := d.Ctr(ctx, "version").CombinedOutput()
		if err == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("%w before it answered (%v); its log:\n%s", ErrExited, d.err, d.logTail())
		case <-ctx.Done():
			return fmt.Errorf("wait for containerd to answer: %w (last: %v: %s); its log:\n%s", ctx.Err(), err, bytes.TrimSpace(out), d.logTail())
		case <-tick.C:
		}
	}
}

// Binary is the path of the daemon's program name (containerd,
// containerd-shim-runc-v2 or ctr): in Options.Bin, or as PATH finds it.
func (d *Daemon) Binary(name string) string {
	if d.bin != "" {
		return filepath.Join(d.bin, name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// PID is the daemon's process ID.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Ctr is a ctr command on the daemon's socket; args start with global
// flags (e.g. "-n", NS) or the command.
func (d *Daemon) Ctr(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, d.Binary("ctr"), append([]string{"--address", d.Socket()}, args...)...)
}

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL,
// and then again for the kill to take.
const stopGrace = 5 * time.Second

// Stop ends the daemon: SIGTERM to its PID, SIGKILL after a grace, and
// waits for it. Shims it started outlive it while their tasks run (see
// RemoveAll and Remove). Stopping a stopped daemon does nothing.
func (d *Daemon) Stop() error {
	select {
	case <-d.done:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(stopGrace):
	}
	_ = d.cmd.Process.Kill()
	select {
	case <-d.done:
		return nil
	case <-time.After(stopGrace):
		return fmt.Errorf("stop containerd (pid %d): still running after SIGKILL", d.PID())
	}
}

// logTail is the end of the daemon's log, for errors.
func (d *Daemon) logTail() string {
	b, _ := os.ReadFile(d.LogFile())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Log is the daemon's whole log so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogFile())
	return string(b)
}

// RemoveAll kills (SIGKILL) and deletes every task and removes every
// container in every namespace of the daemon; images stay. It returns
// what it found, as "namespace/id", so a test can tell whether anything
// was left to remove.
func (d *Daemon) RemoveAll(ctx context.Context) ([]string, error) {
	nss, err := d.lines(ctx, "namespaces", "ls", "-q")
	if err != nil {
		return nil, err
	}
	var found []string
	var errs []error
	for _, ns := range nss {
		ids, err := d.lines(ctx, "-n", ns, "containers", "ls", "-q")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, id := range ids {
			found = append(found, ns+"/"+id)
			// The task may not exist or may have exited: only the
			// container's removal must work.
			_ = d.Ctr(ctx, "-n", ns, "tasks", "kill", "--all", "--signal", "SIGKILL", id).Run()
			_ = d.Ctr(ctx, "-n", ns, "tasks", "delete", "--force", id).Run()
			if out, err := d.Ctr(ctx, "-n", ns, "containers", "delete", id).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("remove container %s/%s: %w: %s", ns, id, err, bytes.TrimSpace(out)))
			}
		}
	}
	return found, errors.Join(errs...)
}

// lines runs a ctr command and returns its output's non-empty lines.
func (d *Daemon) lines(ctx context.Context, args ...string) ([]string, error) {
	cmd := d.Ctr(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.Fields(string(out)), nil
}
