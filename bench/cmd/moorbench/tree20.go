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

// tree20Services is the size of the tree.
const tree20Services = 20

// tree20Script is every service: it waits, and ends at once on SIGTERM.
const tree20Script = "trap 'exit 0' TERM; sleep 1000000 & wait"

// tree20Result compares two ways of bringing up a tree of 20 services on
// the host: moor supervise, and a private containerd driven by ctr run -d
// (runc under containerd's shim, as a linuxkit build runs them). Times
// are wall clock from the first process started to the last service
// running; RSS is what stays resident besides the services' own
// processes (the same for both): moor's supervisor, or containerd and its
// 20 shims.
type tree20Result struct {
	MoorS           float64
	ContainerdS     float64
	ContainerdUpS   float64 // of ContainerdS: the daemon's start until it answers
	MoorRSSKiB      int
	ContainerdRSS   int // the daemon's
	ShimsRSSKiB     int // the 20 shims'
	ContainerdTotal int // daemon + shims
	Shims           int
}

// benchTree20 measures both on the benchmark's busybox root.
func benchTree20(ctx context.Context, moorBin, tmp, state string) (res tree20Result, leaks []string, err error) {
	rootfs := filepath.Join(tmp, "rootfs")
	if res.MoorS, res.MoorRSSKiB, err = tree20Moor(ctx, moorBin, rootfs, filepath.Join(tmp, "tree20"), filepath.Join(state, "tree20")); err != nil {
		return res, nil, err
	}
	leaks, err = tree20Containerd(ctx, rootfs, filepath.Join(state, "t20ctd"), &res)
	return res, leaks, err
}

// tree20Moor writes the tree and runs moor supervise on it, with
// NOTIFY_SOCKET: its READY=1 says every service was started. It returns
// the time to READY and the supervisor's RSS then, and stops it.
func tree20Moor(ctx context.Context, moorBin, rootfs, dir, state string) (secs float64, rss int, err error) {
	for i := range tree20Services {
		s := taskSpec(rootfs, "", "sh", "-c", tree20Script)
		s.Linux.CgroupsPath = "" // moor supervise places it below --cgroup-parent
		if err := writeBundle(filepath.Join(dir, "services", fmt.Sprintf("%03d-svc%02d", i, i)), s); err != nil {
			return 0, 0, err
		}
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return 0, 0, fmt.Errorf("make tree20 state: %w", err)
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
	cmd := exec.Command(moorBin, "--root", filepath.Join(state, "root"), "--cgroup-parent", cgroupParent+"/tree20",
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
		return 0, 0, fmt.Errorf("moor supervise of %d services: %w\n%s", tree20Services, err, b)
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

// tree20Containerd starts a private containerd and, one after another,
// the 20 services with ctr run -d on the same root (--rootfs: no image,
// as linuxkit keeps its services' roots unpacked), read-only, 64 MiB;
// then measures the daemon and its shims, and removes it all.
func tree20Containerd(ctx context.Context, rootfs, dir string, res *tree20Result) (leaks []string, err error) {
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
	for i := range tree20Services {
		id := fmt.Sprintf("svc%02d", i)
		c := d.Ctr(ctx, "-n", ctrNamespace, "run", "-d", "--null-io", "--rootfs", "--read-only",
			"--memory-limit", fmt.Sprint(64<<20), "--runc-root", d.RuntimeRoot("runc"),
			"--cgroup", cgroupParent+"/t20ctr-"+id, rootfs, id, "/bin/sh", "-c", tree20Script)
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
