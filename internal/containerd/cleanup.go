package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/procfs"
)

// ctrRunDirs are directories containerd (1.6 and 2.x) and ctr use outside a
// daemon's own: shim sockets (s) and ctr's FIFOs (fifo), under /run/containerd.
// Remove removes them when they are empty.
var ctrRunDirs = []string{"/run/containerd/s", "/run/containerd/fifo", "/run/containerd"}

// shimKillWait bounds the wait for a killed shim to exit.
const shimKillWait = 5 * time.Second

// Remove cleans up after a stopped daemon (it stops it first if needed):
// it kills the shims still serving it, unmounts everything mounted under
// its directory (deepest first), removes the sockets its shims left in
// /run/containerd/s, its directory, and the shared run directories when
// they are empty. It returns what it found besides the directory's own
// files (shims, mounts, sockets), so a test can fail on any of them.
func (d *Daemon) Remove() (leaks []string, err error) {
	var errs []error
	if err := d.Stop(); err != nil {
		errs = append(errs, err)
	}
	shims, err := d.Shims()
	if err != nil {
		errs = append(errs, err)
	}
	for _, s := range shims {
		leaks = append(leaks, fmt.Sprintf("shim pid %d (%s)", s.PID, s.Task))
		if err := killProcess(s.PID, s.Args); err != nil && !errors.Is(err, anchor.ErrGone) {
			errs = append(errs, fmt.Errorf("kill shim %d: %w", s.PID, err))
		}
	}
	sockets, err := d.shimSockets()
	if err != nil {
		errs = append(errs, err)
	}
	for _, s := range sockets {
		if err := os.Remove(s); err == nil {
			leaks = append(leaks, "shim socket "+s)
		} else if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove shim socket: %w", err))
		}
	}
	mounts, err := unmountUnder(string(d.Layout))
	leaks = append(leaks, mounts...)
	if err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(string(d.Layout)); err != nil {
		errs = append(errs, fmt.Errorf("remove containerd dir: %w", err))
	}
	for _, dir := range ctrRunDirs {
		_ = unix.Rmdir(dir) // only when empty: another daemon's may be there
	}
	return leaks, errors.Join(errs...)
}

// Shim is a shim process serving a daemon.
type Shim struct {
	PID  int
	Task string // namespace/id
	Args []string
}

// Shims lists the shims whose command line names the daemon's socket.
func (d *Daemon) Shims() ([]Shim, error) {
	entries, err := os.ReadDir(procfs.Root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var shims []Shim
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args, err := procfs.ReadCmdline(procfs.Root, pid)
		if err != nil {
			continue // gone meanwhile
		}
		if task, ok := shimTask(args, d.Socket()); ok {
			shims = append(shims, Shim{PID: pid, Task: task, Args: args})
		}
	}
	return shims, nil
}

// shimTask tells whether args are those of a containerd shim (v2) serving
// the daemon on socket, and its task as namespace/id.
func shimTask(args []string, socket string) (string, bool) {
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
		return "", false
	}
	flags := map[string]string{}
	for i := 1; i+1 < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			flags[strings.TrimLeft(args[i], "-")] = args[i+1]
		}
	}
	if flags["address"] != socket {
		return "", false
	}
	return flags["namespace"] + "/" + flags["id"], true
}

// killProcess kills pid with SIGKILL through a pidfd, once it has checked
// the process there still has args, and waits for it to exit.
func killProcess(pid int, args []string) error {
	id, err := anchor.Capture(procfs.Root, pid)
	if err != nil {
		return err
	}
	h, err := id.Open(procfs.Root)
	if err != nil {
		return err
	}
	defer h.Close()
	if now, err := procfs.ReadCmdline(procfs.Root, pid); err != nil || !slices.Equal(now, args) {
		return fmt.Errorf("pid %d is no longer the shim: %w", pid, anchor.ErrGone)
	}
	if err := h.Signal(unix.SIGKILL); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), shimKillWait)
	defer cancel()
	return h.Wait(ctx)
}

// shimSockets are the sockets of the daemon's shims, as their task
// directories record them (<task dir>/address: unix://...).
func (d *Daemon) shimSockets() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(d.TaskDir("*", "*"), "address"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "unix://"); ok && filepath.IsAbs(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// unmountUnder unmounts, deepest first, every mount point under dir and
// returns them.
func unmountUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("read mounts under %s: %w", dir, err)
	}
	var points []string
	for _, m := range infos {
		points = append(points, m.Mountpoint)
	}
	slices.SortFunc(points, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	leaks := make([]string, len(points))
	for i, p := range points {
		leaks[i] = "mount " + p
	}
	return leaks, errors.Join(errs...)
}
