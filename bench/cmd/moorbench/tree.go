package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/internal/containerd"
)

// treeSizes are the trees measured, by their number of services; the
// phase of each is named tree<N>.
var treeSizes = []int{20, 100}

// treeScript is every service: it waits, and ends at once on SIGTERM.
const treeScript = "trap 'exit 0' TERM; sleep 1000000 & wait"

// treeResult compares two ways of bringing up a tree of N services on
// the host: moor supervise, and a private containerd driven by ctr run -d
// (runc under containerd's shim, as a linuxkit build runs them). Times
// are wall clock from the first process started to the last service
// running; RSS is what stays resident besides the services' own
// processes (the same for both): moor's supervisor, or containerd and its
// N shims.
type treeResult struct {
	N               int
	MoorS           float64
	ContainerdS     float64
	ContainerdUpS   float64 // of ContainerdS: the daemon's start until it answers
	MoorRSSKiB      int
	ContainerdRSS   int // the daemon's
	ShimsRSSKiB     int // the N shims'
	ContainerdTotal int // daemon + shims
	Shims           int
}

// benchTree measures a tree of n services both ways on the benchmark's
// busybox root.
func benchTree(ctx context.Context, n int, moorBin, tmp, state string) (res treeResult, leaks []string, err error) {
	res.N = n
	rootfs, name := filepath.Join(tmp, "rootfs"), fmt.Sprintf("tree%d", n)
	if res.MoorS, res.MoorRSSKiB, err = treeMoor(ctx, n, moorBin, rootfs, filepath.Join(tmp, name), filepath.Join(state, name)); err != nil {
		return res, nil, err
	}
	leaks, err = treeContainerd(ctx, rootfs, filepath.Join(state, name+"ctd"), &res)
	return res, leaks, err
}

// treeMoor writes a tree of n services and runs moor supervise on it,
// with NOTIFY_SOCKET: its READY=1 says every service was started. It
// returns the time to READY and the supervisor's RSS then, and stops it.
func treeMoor(ctx context.Context, n int, moorBin, rootfs, dir, state string) (secs float64, rss int, err error) {
	for i := range n {
		s := taskSpec(rootfs, "", "sh", "-c", treeScript)
		s.Linux.CgroupsPath = "" // moor supervise places it below --cgroup-parent
		if err := writeBundle(filepath.Join(dir, "services", fmt.Sprintf("%03d-svc%03d", i, i)), s); err != nil {
			return 0, 0, err
		}
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return 0, 0, fmt.Errorf("make tree state: %w", err)
	}
	sock := filepath.Join(state, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return 0, 0, fmt.Errorf("listen for sd_notify: %w", err)
	}
	defer conn.Close()
	logf, err := os.Create(filepath.Join(dir, "supervise.log"))
	if err != nil {
		return 0, 0, fmt.Errorf("make supervise log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(moorBin, "--root", filepath.Join(state, "root"), "--cgroup-parent", cgroupParent+"/"+filepath.Base(dir),
		"supervise", "--containers", dir, "--log-dir", filepath.Join(dir, "logs"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start moor supervise: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(unix.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case werr := <-done:
			if werr != nil && err == nil {
				err = fmt.Errorf("moor supervise: %w", werr)
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			if err == nil {
				err = errors.New("moor supervise ignored SIGTERM for 60s")
			}
		}
	}()
	if err := waitReady(ctx, conn, 60*time.Second); err != nil {
		b, _ := os.ReadFile(logf.Name())
		return 0, 0, fmt.Errorf("moor supervise of %d services: %w\n%s", n, err, b)
	}
	secs = time.Since(t0).Seconds()
	h, err := measure(cmd.Process.Pid)
	return secs, h.RSSKiB, err
}

// waitReady reads sd_notify datagrams until READY=1.
func waitReady(ctx context.Context, conn *net.UnixConn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for ctx.Err() == nil {
		if err := conn.SetReadDeadline(deadline); err != nil {
			return err
		}
		n, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("wait for READY=1: %w", err)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line == "READY=1" {
				return nil
			}
		}
	}
	return ctx.Err()
}

// treeContainerd starts a private containerd and, one after another,
// the res.N services with ctr run -d on the same root (--rootfs: no image,
// as linuxkit keeps its services' roots unpacked), read-only, 64 MiB;
// then measures the daemon and its shims, and removes it all.
func treeContainerd(ctx context.Context, rootfs, dir string, res *treeResult) (leaks []string, err error) {
	t0 := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := containerd.Start(startCtx, containerd.Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	res.ContainerdUpS = time.Since(t0).Seconds()
	defer func() {
		more, rerr := removeDaemon(ctx, d)
		leaks = append(leaks, more...)
		if err == nil {
			err = rerr
		}
	}()
	for i := range res.N {
		id := fmt.Sprintf("svc%03d", i)
		c := d.Ctr(ctx, "-n", ctrNamespace, "run", "-d", "--null-io", "--rootfs", "--read-only",
			"--memory-limit", fmt.Sprint(64<<20), "--runc-root", d.RuntimeRoot("runc"),
			"--cgroup", fmt.Sprintf("%s/t%dctr-%s", cgroupParent, res.N, id), rootfs, id, "/bin/sh", "-c", treeScript)
		if out, err := c.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ctr run -d %s: %w: %s", id, err, out)
		}
	}
	res.ContainerdS = time.Since(t0).Seconds()
	dh, err := measure(d.PID())
	if err != nil {
		return nil, err
	}
	shims, err := d.Shims()
	if err != nil {
		return nil, err
	}
	res.ContainerdRSS, res.Shims = dh.RSSKiB, len(shims)
	for _, s := range shims {
		h, err := measure(s.PID)
		if err != nil {
			return nil, err
		}
		res.ShimsRSSKiB += h.RSSKiB
	}
	res.ContainerdTotal = res.ContainerdRSS + res.ShimsRSSKiB
	// Their end is expected: only what survives this is a leak.
	if _, err := d.RemoveAll(ctx); err != nil {
		return nil, err
	}
	return nil, nil
}
