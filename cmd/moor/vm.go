package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
	"github.com/lf-edge/moor/devicemodel/taskspec"
	"github.com/lf-edge/moor/devicemodel/xl"
	"github.com/lf-edge/moor/supervisor"
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
it as any task.`,
	Flags: []cli.Flag{
		cli.StringFlag{Name: "vm", Usage: "the VM description (JSON)"},
		cli.StringFlag{Name: "loader", Usage: "a loader bundle whose root holds the device model"},
		cli.BoolFlag{Name: "host-root", Usage: "run the device model from the host's own root, read-only"},
		cli.StringFlag{Name: "bundle, b", Value: ".", Usage: "the bundle directory to write"},
		cli.DurationFlag{Name: "grace", Value: devicemodel.DefaultGrace, Usage: "the anchor's wait between ACPI powerdown and hard stop"},
		cli.StringFlag{Name: "device-model", Usage: "qemu's or xl's path inside the task (default: looked up in PATH)"},
		cli.StringFlag{Name: "xl", Usage: "xl's path on the host, to destroy a Xen domain at delete"},
		cli.StringFlag{Name: "cgroups-path", Usage: "the task's cgroup (default: the namespace's)"},
		cli.StringFlag{Name: "anchor", Usage: "the lean anchor binary (default: " + anchorBinary + " beside moor, if there; else moor itself)"},
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
	f, err := os.Open(ctx.String("vm"))
	if err != nil {
		return err
	}
	vm, err := devicemodel.Parse(f, devicemodel.HostProbe{})
	f.Close()
	if err != nil {
		return err
	}
	bundle, err := filepath.Abs(ctx.String("bundle"))
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(bundle, "config.json")
	if _, err := os.Stat(cfgPath); err == nil {
		return fmt.Errorf("%s exists already", cfgPath)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find moor: %w", err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return fmt.Errorf("find moor: %w", err)
	}
	anchor, err := findAnchor(ctx.String("anchor"), self)
	if err != nil {
		return err
	}
	o := taskspec.Options{
		Moor: self, Anchor: anchor, RunDir: filepath.Join(bundle, "vm"), Grace: ctx.Duration("grace"),
		DeviceModel: ctx.String("device-model"), XL: ctx.String("xl"), CgroupsPath: ctx.String("cgroups-path"),
	}
	if l := ctx.String("loader"); l != "" {
		if o.Loader, err = loadLoader(l); err != nil {
			return err
		}
	}
	if vm.Hypervisor == devicemodel.Xen && o.XL == "" {
		o.XL = findXL(o.Loader)
	}
	spec, inTask, err := taskspec.Build(vm, o)
	if err != nil {
		return err
	}
	if err := writeRunDir(o.RunDir, vm, inTask); err != nil {
		return err
	}
	return writeJSON(cfgPath, spec)
}

// writeRunDir makes the task's run directory on the host: the VM
// description as the task sees it and, for a VM with a UEFI variable
// store, the VM's own copy of its template.
func writeRunDir(dir string, vm, inTask *devicemodel.VM) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if vm.FirmwareVars != "" {
		if err := copyOnce(vm.FirmwareVars, filepath.Join(dir, devicemodel.VarsFile)); err != nil {
			return fmt.Errorf("firmwareVars: %w", err)
		}
	}
	return writeJSON(filepath.Join(dir, devicemodel.VMFile), inTask)
}

// copyOnce copies the template src to dst, mode 0600, unless dst is there
// already: a VM's variable store is made once, then kept. The copy is
// written to a temporary file beside dst and hard-linked into place, a
// rename that never replaces: a crash leaves no half copy at dst, and a
// copy made meanwhile is kept.
func copyOnce(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("read template: %w", err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("read template: %s is not a regular file", src)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*") // mode 0600
	if err != nil {
		return fmt.Errorf("copy template %s: %w", src, err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = os.Link(tmp.Name(), dst); errors.Is(err, os.ErrExist) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("copy template %s: %w", src, err)
	}
	return nil
}

// anchorBinary is the lean anchor's file name, looked for beside moor.
const anchorBinary = "moor-anchor"

// findAnchor is the lean anchor's absolute path: the one named, which must
// exist, else moor-anchor beside moor; empty when there is none, so that
// moor itself is the anchor.
func findAnchor(named, moor string) (string, error) {
	if named == "" {
		beside := filepath.Join(filepath.Dir(moor), anchorBinary)
		if fi, err := os.Stat(beside); err != nil || !fi.Mode().IsRegular() {
			return "", nil
		}
		return beside, nil
	}
	p, err := filepath.Abs(named)
	if err == nil {
		p, err = filepath.EvalSymlinks(p)
	}
	if err != nil {
		return "", fmt.Errorf("find anchor: %w", err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("find anchor: %s is not a file", p)
	}
	return p, nil
}

// loadLoader reads a loader bundle's spec and makes its root absolute.
func loadLoader(dir string) (*specs.Spec, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s, err := supervisor.LoadSpec(dir)
	if err != nil {
		return nil, fmt.Errorf("load loader: %w", err)
	}
	if s.Root == nil || s.Root.Path == "" {
		return nil, fmt.Errorf("load loader %s: root.path is not set", dir)
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(dir, s.Root.Path)
	}
	return s, taskspec.CheckLoader(s)
}

// findXL finds xl on the host: in the loader's root, else in PATH.
func findXL(loader *specs.Spec) string {
	if loader != nil {
		for _, p := range []string{"/usr/sbin/xl", "/usr/bin/xl", "/usr/local/sbin/xl"} {
			if fi, err := os.Stat(filepath.Join(loader.Root.Path, p)); err == nil && !fi.IsDir() {
				return filepath.Join(loader.Root.Path, p)
			}
		}
		return ""
	}
	p, _ := exec.LookPath("xl")
	return p
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
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
		if err := vmPoststop(st.Annotations); err != nil {
			return fmt.Errorf("vm poststop %s: %w", st.ID, err)
		}
		return nil
	},
}

func vmPoststop(a map[string]string) error {
	dir := a[devicemodel.AnnotationRunDir]
	if dir == "" {
		return nil
	}
	if a[devicemodel.AnnotationHypervisor] == string(devicemodel.Xen) && a[devicemodel.AnnotationXL] != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d := &xl.Driver{Run: hostXL(a[devicemodel.AnnotationXL]), Name: a[devicemodel.AnnotationName]}
		if err := d.Destroy(ctx); err != nil {
			return err
		}
	}
	stale := append(qemu.PathsIn(dir).Stale(), filepath.Join(dir, devicemodel.RunStateFile))
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// hostXL runs xl on the host, from a CLI process that has no reaper.
type hostXL string

func (x hostXL) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, string(x), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("xl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
