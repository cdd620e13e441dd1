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
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return res, fmt.Errorf("find qemu (apt-get install qemu-system-x86): %w", err)
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		return res, fmt.Errorf("no kernel in /boot (apt-get install linux-image-amd64)")
	}
	kernel := kernels[len(kernels)-1]
	res.Kernel = strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
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
	initrd := filepath.Join(dir, "initrd.gz")
	if out, err := exec.CommandContext(ctx, moorBin, "initramfs", "--containers", tree, "--modules", "button,evdev",
		"--kernel-version", res.Kernel, "--out", initrd).CombinedOutput(); err != nil {
		return res, fmt.Errorf("moor initramfs: %w: %s", err, out)
	}
	console, sock := filepath.Join(dir, "console.log"), filepath.Join(dir, "qmp.sock")
	q := exec.Command("qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot",
		"-serial", "file:"+console, "-qmp", "unix:"+sock+",server=on,wait=off",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet")
	if err := q.Start(); err != nil {
		return res, fmt.Errorf("start qemu: %w", err)
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
	deadline := time.Now().Add(90 * time.Second)
	for {
		b, _ := os.ReadFile(console)
		if m := machineReady.FindStringSubmatch(string(b)); m != nil {
			res.BootReadyMS, _ = strconv.Atoi(m[1])
			res.PID1RSSKiB, _ = strconv.Atoi(m[2])
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = q.Process.Kill()
			return res, fmt.Errorf("the machine was not ready after 90s; console:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mon, err := qemu.Dial(qctx, sock)
	if err != nil {
		_ = q.Process.Kill()
		return res, err
	}
	defer mon.Close()
	return res, mon.SystemPowerdown(qctx)
}
