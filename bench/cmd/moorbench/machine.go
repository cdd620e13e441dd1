package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lf-edge/moor/devicemodel/qemu"
	"github.com/lf-edge/moor/internal/evebox"
)

// machineResult is moor as a machine's init, booted under qemu TCG with
// Debian's kernel: the kernel's uptime when every service of the tree
// runs, and moor's RSS as PID 1 then (moor logs both at READY).
type machineResult struct {
	BootReadyMS int
	PID1RSSKiB  int
	Kernel      string
}

// machineReady is moor's log line at READY on the guest's console.
var machineReady = regexp.MustCompile(`msg="machine ready" component=machine boot_ready_ms=(\d+) rss_kib=(\d+)`)

// benchMachine writes a tree of one onboot task and two services, packs it
// with moor initramfs, boots it and reads the figures from the console,
// then presses the power button and waits for the guest to power off.
func benchMachine(ctx context.Context, moorBin, dir string) (res machineResult, err error) {
	tree := filepath.Join(dir, "containers")
	if err := buildRootfs(filepath.Join(tree, "rootfs")); err != nil {
		return res, err
	}
	for name, script := range map[string]string{
		"onboot/000-hello":  "echo hello",
		"services/010-web":  "trap 'exit 0' TERM; sleep 1000000 & wait",
		"services/020-echo": "trap 'exit 0' TERM; echo up; sleep 1000000 & wait",
	} {
		s := taskSpec("/containers/rootfs", "", "sh", "-c", script)
		s.Linux.CgroupsPath = ""
		s.Annotations = map[string]string{"moor.stop-timeout": "2s"}
		if err := writeBundle(filepath.Join(tree, name), s); err != nil {
			return res, err
		}
	}
	con, kernel, err := bootTree(ctx, moorBin, dir, machineReady, 90*time.Second)
	res.Kernel = kernel
	if m := machineReady.FindStringSubmatch(con); m != nil {
		res.BootReadyMS, _ = strconv.Atoi(m[1])
		res.PID1RSSKiB, _ = strconv.Atoi(m[2])
	}
	return res, err
}

// boxResult is EVE in a box (internal/evebox): moor as PID 1 of a TCG
// machine booting the EVE-shaped tree with moor-taskmgr as pillar and
// three user apps.
type boxResult struct {
	ServicesReadyMS  int     // kernel uptime when every EVE service runs
	AppsReadyMS      int     // kernel uptime when the three apps run
	PID1RSSKiB       int     // moor's RSS as PID 1 with the apps running
	ExtraProcsPerApp float64 // processes beyond the apps' own and the services', per app
}

var (
	boxDone    = regexp.MustCompile(`box: done|box: timed out[^\r\n]*`)
	boxApps    = regexp.MustCompile(`box: apps running uptime_ms=(\d+)`)
	boxFigures = regexp.MustCompile(`box: pid1_rss_kib=(\d+) extra_procs=(\d+)`)
)

// benchEVEBox boots EVE in a box and reads its probe's figures.
func benchEVEBox(ctx context.Context, moorBin, dir string) (res boxResult, err error) {
	busybox := filepath.Join(dir, "busybox")
	if err := buildRootfs(busybox); err != nil {
		return res, err
	}
	box := &evebox.Box{Dir: filepath.Join(dir, "containers"), Busybox: busybox, Taskmgr: filepath.Join(filepath.Dir(moorBin), "moor-taskmgr")}
	if err := box.Write(); err != nil {
		return res, err
	}
	con, _, err := bootTree(ctx, moorBin, dir, boxDone, 5*time.Minute)
	if err != nil {
		return res, err
	}
	if m := boxDone.FindString(con); m != "box: done" {
		return res, fmt.Errorf("eve box: the probe says %q", m)
	}
	m, a, f := machineReady.FindStringSubmatch(con), boxApps.FindStringSubmatch(con), boxFigures.FindStringSubmatch(con)
	if m == nil || a == nil || f == nil {
		return res, fmt.Errorf("eve box: figures missing on the console:\n%s", con)
	}
	res.ServicesReadyMS, _ = strconv.Atoi(m[1])
	res.AppsReadyMS, _ = strconv.Atoi(a[1])
	res.PID1RSSKiB, _ = strconv.Atoi(f[1])
	extra, _ := strconv.Atoi(f[2])
	res.ExtraProcsPerApp = float64(extra) / float64(len(evebox.Apps))
	return res, nil
}

// bootTree packs dir/containers with moor initramfs, boots it under qemu
// TCG with Debian's kernel until the console matches until, then presses
// the power button and waits for the guest to power off. It returns the
// console and the kernel's release.
func bootTree(ctx context.Context, moorBin, dir string, until *regexp.Regexp, timeout time.Duration) (con, release string, err error) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "", "", fmt.Errorf("find qemu (apt-get install qemu-system-x86): %w", err)
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		return "", "", fmt.Errorf("no kernel in /boot (apt-get install linux-image-amd64)")
	}
	kernel := kernels[len(kernels)-1]
	release = strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	initrd := filepath.Join(dir, "initrd.gz")
	if out, err := exec.CommandContext(ctx, moorBin, "initramfs", "--containers", filepath.Join(dir, "containers"), "--modules", "button,evdev",
		"--kernel-version", release, "--out", initrd).CombinedOutput(); err != nil {
		return "", release, fmt.Errorf("moor initramfs: %w: %s", err, out)
	}
	console, sock := filepath.Join(dir, "console.log"), filepath.Join(dir, "qmp.sock")
	q := exec.Command("qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot",
		"-serial", "file:"+console, "-qmp", "unix:"+sock+",server=on,wait=off",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet")
	if err := q.Start(); err != nil {
		return "", release, fmt.Errorf("start qemu: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Wait() }()
	defer func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = q.Process.Kill()
			<-done
			if err == nil {
				err = fmt.Errorf("the guest did not power off on the power button")
			}
		}
	}()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(console)
		if con = string(b); until.MatchString(con) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = q.Process.Kill()
			return con, release, fmt.Errorf("the console did not show %s after %v; console:\n%s", until, timeout, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mon, err := qemu.Dial(qctx, sock)
	if err != nil {
		_ = q.Process.Kill()
		return con, release, err
	}
	defer mon.Close()
	return con, release, mon.SystemPowerdown(qctx)
}
