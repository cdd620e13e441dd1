package vmbundle

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lf-edge/moor/atomicfile"
	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/guest"
	"github.com/lf-edge/moor/initramfs"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/vmbundle/taskspec"
)

// GuestInitBinary is the guest init's file name, looked for beside moor.
const GuestInitBinary = "moor-guest"

// NoModules, as Options.Modules, ships no kernel modules: the kernel has
// what the guest needs built in.
const NoModules = "none"

// guestModules are what the guest init needs of a modular kernel: virtio
// over PCI, the virtio-serial ports and 9p over virtio.
var guestModules = []string{"virtio_pci", "virtio_console", "9pnet_virtio", "9p"}

// initramfsGlob matches the initramfs files moor leaves in a run
// directory, named by their content.
const initramfsGlob = "initramfs-*.cpio.gz"

// prepareApp reads the app bundle, plans its shares and guest init, and
// writes its initramfs into the run directory.
func prepareApp(vm *devicemodel.VM, o Options, runDir string) (*taskspec.App, error) {
	appDir, err := filepath.Abs(o.App)
	if err != nil {
		return nil, fmt.Errorf("prepare app: %w", err)
	}
	spec, err := lifecycle.LoadSpec(appDir)
	if err != nil {
		return nil, fmt.Errorf("prepare app: %w", err)
	}
	app, err := taskspec.PlanApp(spec, appDir)
	if err != nil {
		return nil, err
	}
	for _, sh := range app.Shares {
		if fi, err := os.Stat(sh.HostPath); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("prepare app: share %s: %s is not a directory (9p shares directories)", sh.Tag, sh.HostPath)
		}
	}
	init, err := findGuestInit(o.GuestInit, o.Moor, vm.Arch)
	if err != nil {
		return nil, fmt.Errorf("prepare app: %w", err)
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("prepare app: %w", err)
	}
	app.Initramfs, err = writeInitramfs(runDir, init, modulesDir(o.Modules, vm.Kernel), app.Guest)
	if err != nil {
		return nil, fmt.Errorf("prepare app: %w", err)
	}
	return app, nil
}

// findGuestInit is the guest init for a guest of arch: the one named,
// else GuestInitBinary.<arch> beside moor (make build makes
// moor-guest.arm64), else GuestInitBinary beside moor; it must be an ELF
// executable for arch.
func findGuestInit(named, moor string, arch devicemodel.Arch) (string, error) {
	p, err := findBeside(named, moor, GuestInitBinary+"."+string(arch))
	if err == nil && p == "" && named == "" {
		p, err = findBeside("", moor, GuestInitBinary)
	}
	if err != nil {
		return "", fmt.Errorf("find guest init: %w", err)
	}
	if p == "" {
		return "", fmt.Errorf("find guest init: neither %s.%s nor %s is beside moor (make build puts them there) and --guest-init names none",
			GuestInitBinary, arch, GuestInitBinary)
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("find guest init: %s: %w", p, err)
	}
	defer f.Close()
	if want := elfMachines[arch]; f.Machine != want {
		return "", fmt.Errorf("find guest init: %s is built for %v, the guest is %s (GOARCH=%s go build ./cmd/moor-guest)", p, f.Machine, arch, arch)
	}
	return p, nil
}

// elfMachines are the ELF machines of the guests' architectures.
var elfMachines = map[devicemodel.Arch]elf.Machine{devicemodel.AMD64: elf.EM_X86_64, devicemodel.ARM64: elf.EM_AARCH64}

// modulesDir is the module directory of the guest's kernel: the one
// named, NoModules, or /lib/modules/<release> when the kernel's release
// can be read ("" when not: the build says so).
func modulesDir(named, kernel string) string {
	if named != "" {
		return named
	}
	rel, err := initramfs.KernelRelease(kernel)
	if err != nil {
		return ""
	}
	return filepath.Join("/lib/modules", rel)
}

// writeInitramfs builds the app's initramfs (the guest init as /init,
// /dev/console, its configuration and the kernel modules it loads) and
// writes it into runDir named by its content, unless it is there
// already; other initramfs files moor left there go. It returns the
// file's path.
func writeInitramfs(runDir, guestInit, modDir string, cfg guest.Config) (string, error) {
	a := initramfs.New()
	if err := a.CopyFile("/init", guestInit); err != nil {
		return "", err
	}
	for _, d := range []string{"/dev", "/proc", "/sys", guest.AppRoot} {
		if err := a.Dir(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := a.Device("/dev/console", 0o600, initramfs.CharDevice, 5, 1); err != nil {
		return "", err
	}
	switch modDir {
	case NoModules:
	case "":
		return "", errors.New("build initramfs: the kernel's release cannot be read: name its module directory (--kernel-modules DIR, or none for a kernel without modules)")
	default:
		mods, err := initramfs.LoadModules(modDir)
		if err != nil {
			return "", fmt.Errorf("build initramfs: %w (--kernel-modules none for a kernel without modules)", err)
		}
		names := guestModules
		if cfg.MayOverlay() {
			names = append(names[:len(names):len(names)], "overlay")
		}
		if cfg.Modules, err = a.AddModules(mods, names...); err != nil {
			return "", fmt.Errorf("build initramfs: %w", err)
		}
	}
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return "", fmt.Errorf("build initramfs: %w", err)
	}
	if err := a.File(guest.ConfigFile, 0o644, append(b, '\n')); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := a.Write(&buf); err != nil {
		return "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	file := filepath.Join(runDir, "initramfs-"+hex.EncodeToString(sum[:8])+".cpio.gz")
	old, _ := filepath.Glob(filepath.Join(runDir, initramfsGlob))
	for _, p := range old {
		if p != file {
			_ = os.Remove(p)
		}
	}
	if err := atomicfile.Create(file, &buf, 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("write initramfs: %w", err)
	}
	return file, nil
}
