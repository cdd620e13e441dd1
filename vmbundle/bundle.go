package vmbundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/vmbundle/taskspec"
)

// SpecFile is the task's spec in the bundle.
const SpecFile = "config.json"

// RunDir is the run directory's name in the bundle.
const RunDir = "vm"

// AnchorBinary is the lean anchor's file name, looked for beside moor.
const AnchorBinary = "moor-anchor"

// Options say where a hypervisor task's pieces come from.
type Options struct {
	// Dir is the bundle directory; relative to the working directory
	// when not absolute.
	Dir string
	// Moor is the moor binary (absolute, symlinks resolved): the
	// poststop hook, and the anchor when there is no lean one.
	Moor string
	// Anchor is the lean anchor binary named by the caller, which must
	// exist; empty takes AnchorBinary beside Moor when it is there.
	Anchor string
	// Loader is a loader bundle whose root holds the device model;
	// empty runs it from the host's own root, read-only.
	Loader string
	// Grace is the anchor's wait between ACPI powerdown and hard stop.
	Grace time.Duration
	// DeviceModel is qemu's or xl's path inside the task; empty lets the
	// anchor look it up in PATH.
	DeviceModel string
	// XL is xl's path on the host, to destroy a Xen domain at delete;
	// empty looks for it in the loader's root, else in PATH.
	XL string
	// CgroupsPath is the task's cgroup; empty leaves the default.
	CgroupsPath string
	// App is a container app's bundle to run inside the VM (or, for a
	// VM of mode nohyper, as a plain container task).
	App string
	// GuestInit is the guest init binary named by the caller, which must
	// exist; empty takes GuestInitBinary beside Moor.
	GuestInit string
	// Modules is the guest kernel's module directory, or NoModules;
	// empty takes /lib/modules/<the kernel's release>.
	Modules string
}

// Write writes the bundle of a hypervisor task for vm: Dir/config.json,
// which must not exist yet, and the run directory Dir/vm. With an App
// the guest runs that container app; a VM of mode nohyper runs it as a
// plain container task instead (WriteContainer).
func Write(vm *devicemodel.VM, o Options) error {
	if o.App != "" && vm.Mode == devicemodel.ModeNoHyper {
		return WriteContainer(vm, o)
	}
	bundle, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(bundle, SpecFile)
	if _, err := os.Stat(cfgPath); err == nil {
		return fmt.Errorf("%s exists already", cfgPath)
	}
	anchor, err := FindAnchor(o.Anchor, o.Moor)
	if err != nil {
		return err
	}
	to := taskspec.Options{
		Moor: o.Moor, Anchor: anchor, RunDir: filepath.Join(bundle, RunDir), Grace: o.Grace,
		DeviceModel: o.DeviceModel, XL: o.XL, CgroupsPath: o.CgroupsPath,
	}
	if o.Loader != "" {
		if to.Loader, err = LoadLoader(o.Loader); err != nil {
			return err
		}
	}
	if vm.Hypervisor == devicemodel.Xen && to.XL == "" {
		to.XL = findXL(to.Loader)
	}
	if o.App != "" {
		if to.App, err = prepareApp(vm, o, to.RunDir); err != nil {
			return err
		}
	}
	spec, inTask, err := taskspec.Build(vm, to)
	if err != nil {
		return err
	}
	// A VM task is a user-defined task: EVE's minimum viable spec holds.
	if err := lifecycle.RequireMinimumSpec(spec); err != nil {
		return err
	}
	if err := writeRunDir(to.RunDir, vm, inTask); err != nil {
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
// already: a VM's variable store is made once, then kept. The copy never
// replaces: a crash leaves no half copy at dst, and a copy made meanwhile
// is kept.
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
	if err := atomicfile.Create(dst, in, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("copy template %s: %w", src, err)
	}
	return nil
}

// FindAnchor is the lean anchor's absolute path: the one named, which
// must exist, else AnchorBinary beside moor; empty when there is none, so
// that moor itself is the anchor.
func FindAnchor(named, moor string) (string, error) {
	p, err := findBeside(named, moor, AnchorBinary)
	if err != nil {
		return "", fmt.Errorf("find anchor: %w", err)
	}
	return p, nil
}

// findBeside is the absolute path of a helper binary: the one named,
// which must exist, else the file base beside moor; empty when there is
// none.
func findBeside(named, moor, base string) (string, error) {
	if named == "" {
		beside := filepath.Join(filepath.Dir(moor), base)
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
		return "", err
	}
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a file", p)
	}
	return p, nil
}

// LoadLoader reads a loader bundle's spec, makes its root absolute and
// checks that it can hold a hypervisor task.
func LoadLoader(dir string) (*specs.Spec, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s, err := lifecycle.LoadSpec(dir)
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

// xlPaths are where a loader's root may hold xl.
var xlPaths = []string{"/usr/sbin/xl", "/usr/bin/xl", "/usr/local/sbin/xl"}

// findXL finds xl on the host: in the loader's root, else in PATH.
func findXL(loader *specs.Spec) string {
	if loader != nil {
		for _, p := range xlPaths {
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
