package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/vmbundle"
)

var vmCommand = cli.Command{
	Name:  "vm",
	Usage: "hypervisor tasks: a VM description made into a task's bundle",
	Subcommands: []cli.Command{
		vmSpecCommand, vmPoststopCommand,
	},
}

var vmSpecCommand = cli.Command{
	Name:  "spec",
	Usage: "write the config.json of a hypervisor task for a VM description",
	Description: `Writes <bundle>/config.json: the loader's root (or the host's, read-only)
with the anchor as the task's process (moor-anchor, the lean anchor, when it
is beside moor or named by --anchor; else "moor anchor"), the VM's kernel, initrd, firmware and
disks bind-mounted, /dev/kvm and /dev/net/tun where needed, a memory limit of
the guest's RAM plus the anchor tax and a CPU quota of one CPU per vCPU. The
task's run directory is <bundle>/vm (vm.json, the device model's config,
sockets, console.log, runstate.json). For a VM with firmwareVars it also holds
OVMF_VARS.fd, the VM's own copy of that template: made once, when it is not
there yet, and kept across restarts. Then create, start, kill and delete drive
it as any task.

With --app APPBUNDLE the guest runs that container app: moor builds an
initramfs (in <bundle>/vm, named by its content) whose /init is moor's guest
init (moor-guest, beside moor or named by --guest-init) with the kernel modules
it needs from --kernel-modules (default: /lib/modules/<the kernel's release>);
the app's root and bind volumes are shared over virtio-9p; the task exits with
the app's status, and SIGTERM reaches the app. A VM of mode nohyper runs the
app as a plain container task instead.`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "vm", Usage: "the VM description (JSON)"},
		cli.StringFlag{Name: "loader", Usage: "a loader bundle whose root holds the device model"},
		cli.BoolFlag{Name: "host-root", Usage: "run the device model from the host's own root, read-only"},
		cli.StringFlag{Name: "bundle, b", Value: ".", Usage: "the bundle directory to write"},
		cli.DurationFlag{Name: "grace", Value: devicemodel.DefaultGrace, Usage: "the anchor's wait between ACPI powerdown and hard stop"},
		cli.StringFlag{Name: "device-model", Usage: "qemu's or xl's path inside the task (default: looked up in PATH)"},
		cli.StringFlag{Name: "xl", Usage: "xl's path on the host, to destroy a Xen domain at delete"},
		cli.StringFlag{Name: "cgroups-path", Usage: "the task's cgroup (default: the namespace's)"},
		cli.StringFlag{Name: "anchor", Usage: "the lean anchor binary (default: " + vmbundle.AnchorBinary + " beside moor, if there; else moor itself)"},
		cli.StringFlag{Name: "app", Usage: "a container app's OCI bundle to run inside the VM (mode nohyper: as a container task)"},
		cli.StringFlag{Name: "guest-init", Usage: "the guest init binary of --app (default: " + vmbundle.GuestInitBinary + " beside moor)"},
		cli.StringFlag{Name: "kernel-modules", Usage: "the guest kernel's module directory for --app, or " + vmbundle.NoModules + " (default: /lib/modules/<the kernel's release>)"},
	},
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() != 0 {
			return errors.New("vm spec: takes no arguments")
		}
		if err := writeVMBundle(ctx); err != nil {
			return fmt.Errorf("vm spec: %w", err)
		}
		return nil
	},
}

func writeVMBundle(ctx *cli.Context) error {
	if ctx.String("vm") == "" {
		return errors.New("--vm is required")
	}
	if (ctx.String("loader") == "") == !ctx.Bool("host-root") {
		return errors.New("want exactly one of --loader and --host-root")
	}
	if ctx.String("app") == "" && (ctx.String("guest-init") != "" || ctx.String("kernel-modules") != "") {
		return errors.New("--guest-init and --kernel-modules go with --app")
	}
	f, err := os.Open(ctx.String("vm"))
	if err != nil {
		return err
	}
	vm, err := devicemodel.Parse(f, devicemodel.HostProbe{})
	f.Close()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find moor: %w", err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return fmt.Errorf("find moor: %w", err)
	}
	return vmbundle.Write(vm, vmbundle.Options{
		Dir: ctx.String("bundle"), Moor: self, Anchor: ctx.String("anchor"), Loader: ctx.String("loader"),
		Grace: ctx.Duration("grace"), DeviceModel: ctx.String("device-model"), XL: ctx.String("xl"),
		CgroupsPath: ctx.String("cgroups-path"), App: ctx.String("app"),
		GuestInit: ctx.String("guest-init"), Modules: ctx.String("kernel-modules"),
	})
}

var vmPoststopCommand = cli.Command{
	Name:  "poststop",
	Usage: "the poststop hook of a hypervisor task (reads the OCI state on stdin)",
	Description: `Run by delete: destroys the Xen domain of a task whose anchor could not
(xl destroy; a domain that is gone already is fine) and removes the sockets
and pidfile the device model left in the run directory.`,
	Action: func(ctx *cli.Context) error {
		var st specs.State
		if err := json.NewDecoder(os.Stdin).Decode(&st); err != nil {
			return fmt.Errorf("vm poststop: read state: %w", err)
		}
		if err := vmbundle.Poststop(st.Annotations); err != nil {
			return fmt.Errorf("vm poststop %s: %w", st.ID, err)
		}
		return nil
	},
}
