package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lf-edge/moor/internal/containerd"
	"github.com/lf-edge/moor/internal/ociimage"
)

// ctrRuntimes are the runtimes measured under containerd, in this order.
var ctrRuntimes = []string{"moor", "runc"}

// ctrImage is the image made from the benchmark's rootfs.
const ctrImage = "docker.io/library/busybox:moorbench"

// ctrNamespace is the containerd namespace of the benchmark's containers.
const ctrNamespace = "moorbench"

// ctrResult is the containerd row: `ctr run --rm` of /bin/true through
// each runtime, and containerd's version.
type ctrResult struct {
	Version string
	RunRm   map[string]sample
}

// benchCtr starts a private containerd in dir (on the state tmpfs, as
// containerd's own state is under /run) with the benchmark's rootfs as an
// image, and times `ctr run --rm IMAGE ID /bin/true` through moor and runc
// (ctr --runc-binary), round after round, the runtimes' order rotating.
// Each call makes and removes a container, an overlay snapshot, a shim and
// a task with a cgroup under /moor-bench. The first warm-up rounds are
// not kept. Everything is removed at the end; what had to be cleaned after
// the daemon is returned as leaks.
func benchCtr(ctx context.Context, rts []*ociRuntime, dir, rootfs string, warmup, rounds int) (res ctrResult, leaks []string, err error) {
	bins := map[string]string{}
	for _, rt := range rts {
		bins[rt.Name] = rt.Bin
	}
	startCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	d, err := containerd.Start(startCtx, containerd.Options{Dir: dir})
	if err != nil {
		return res, nil, err
	}
	defer func() {
		more, rerr := removeDaemon(ctx, d)
		leaks = append(leaks, more...)
		if err == nil {
			err = rerr
		}
	}()
	out, err := d.Ctr(ctx, "version").Output()
	if err != nil {
		return res, nil, fmt.Errorf("ctr version: %w", err)
	}
	res.Version = serverVersion(string(out))
	archive := filepath.Join(dir, "busybox.tar")
	if _, err := ociimage.WriteFile(archive, rootfs, ociimage.Image{Name: ctrImage, Env: []string{"PATH=/bin"}}); err != nil {
		return res, nil, err
	}
	if out, err := d.Ctr(ctx, "-n", ctrNamespace, "images", "import", archive).CombinedOutput(); err != nil {
		return res, nil, fmt.Errorf("ctr images import: %w: %s", err, out)
	}

	res.RunRm = map[string]sample{}
	for r := 0; r < warmup+rounds; r++ {
		for i := range ctrRuntimes {
			name := ctrRuntimes[(r+i)%len(ctrRuntimes)]
			id := fmt.Sprintf("ctr-%s-%d", name, r)
			dur, err := ctrRunRm(ctx, d, name, bins[name], id)
			if err != nil {
				return res, nil, fmt.Errorf("%s: %w", name, err)
			}
			if r >= warmup {
				res.RunRm[name] = append(res.RunRm[name], ms(dur))
			}
		}
	}
	return res, nil, nil
}

// ctrRunRm times one `ctr run --rm` of /bin/true through the runtime name
// (binary bin), its state root in the daemon's directory, its cgroup under
// /moor-bench.
func ctrRunRm(ctx context.Context, d *containerd.Daemon, name, bin, id string) (time.Duration, error) {
	c := d.Ctr(ctx, "-n", ctrNamespace, "run", "--rm", "--runc-binary", bin,
		"--runc-root", d.RuntimeRoot(name), "--cgroup", cgroupParent+"/"+id, ctrImage, id, "/bin/true")
	var stderr strings.Builder
	c.Stderr = &stderr
	t0 := time.Now()
	err := c.Run()
	dur := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("ctr run --rm %s: %w: %s", id, err, stderr.String())
	}
	return dur, nil
}

// removeDaemon removes the containers left in a private containerd, then
// the daemon and its directory; what had to be removed is returned as
// leaks.
func removeDaemon(ctx context.Context, d *containerd.Daemon) ([]string, error) {
	found, rerr := d.RemoveAll(context.WithoutCancel(ctx))
	var leaks []string
	for _, f := range found {
		leaks = append(leaks, "containerd container "+f)
	}
	more, cerr := d.Remove()
	return append(leaks, more...), errors.Join(rerr, cerr)
}

// serverVersion is the server's version in `ctr version` output.
func serverVersion(out string) string {
	_, server, ok := strings.Cut(out, "Server:")
	if !ok {
		return "unknown"
	}
	for _, line := range strings.Split(server, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
