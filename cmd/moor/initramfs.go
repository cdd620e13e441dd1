package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/supervisor/machine"
)

var initramfsCommand = cli.Command{
	Name:  "initramfs",
	Usage: "build an initramfs whose /init is moor, booting a containers tree as the machine's PID 1",
	Description: `Writes a gzip'd newc cpio: /init is this moor binary (static), DIR's tree
is at /containers, and the modules named (with what they need, from
/lib/modules/V) are loaded at boot from /etc/modules. Boot it with
  qemu-system-x86_64 -kernel vmlinuz -initrd FILE -append console=ttyS0`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "containers", Usage: "the containers tree (onboot/, services/) to put at /containers"},
		cli.StringFlag{Name: "modules", Usage: "kernel modules to load at boot, comma-separated (e.g. button,evdev for the power button)"},
		cli.StringFlag{Name: "kernel-version", Usage: "the release whose /lib/modules/V the modules come from (default: the running kernel's)"},
		cli.StringFlag{Name: "hostname", Usage: "the machine's host name (/etc/hostname; default " + machine.DefaultHostname + ")"},
		cli.StringFlag{Name: "out", Usage: "the initramfs file to write"},
	},
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() != 0 {
			return fmt.Errorf("initramfs: takes no arguments")
		}
		if ctx.String("containers") == "" || ctx.String("out") == "" {
			return fmt.Errorf("initramfs: --containers and --out are required")
		}
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("initramfs: find moor: %w", err)
		}
		o := machine.ImageOptions{Init: self, Containers: ctx.String("containers"), Hostname: ctx.String("hostname")}
		for _, m := range strings.Split(ctx.String("modules"), ",") {
			if m = strings.TrimSpace(m); m != "" {
				o.Modules = append(o.Modules, m)
			}
		}
		release := ctx.String("kernel-version")
		if release == "" {
			var uts unix.Utsname
			if err := unix.Uname(&uts); err != nil {
				return fmt.Errorf("initramfs: uname: %w", err)
			}
			release = unix.ByteSliceToString(uts.Release[:])
		}
		o.ModuleDir = filepath.Join("/lib/modules", release)
		if _, err := os.Stat(o.ModuleDir); err != nil && len(o.Modules) > 0 {
			return fmt.Errorf("initramfs: no modules of kernel %s (--kernel-version names another): %w", release, err)
		}
		a, err := machine.Image(o)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		var buf bytes.Buffer
		if err := a.Write(&buf); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		if err := atomicfile.Write(ctx.String("out"), buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("initramfs: write %s: %w", ctx.String("out"), err)
		}
		return nil
	},
}
