package taskspec

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/guest"
)

// Mount tags of a container app's shares: the root, then each bind volume.
const (
	RootTag   = "moor-root"
	VolumeTag = "moor-vol" // + the volume's index
)

// taskShareDir holds the VM's shares inside the task, one directory each
// by its tag: what qemu exports.
const taskShareDir = "/run/moor/share"

// AppShare is a host directory of the app shared with its guest.
type AppShare struct {
	Tag      string
	HostPath string
	ReadOnly bool
}

// App is a container app's part of a hypervisor task: what is shared with
// the guest and what its guest init applies.
type App struct {
	// Shares are the app's root first, then its bind volumes.
	Shares []AppShare
	// Guest is the guest init's configuration, without its modules.
	Guest guest.Config
	// Initramfs is the initramfs moor built for the app, in the run
	// directory on the host; Build sets it.
	Initramfs string
}

// kernelFS are the mount types the guest makes itself.
var kernelFS = map[string]string{
	"proc": "proc", "sysfs": "sysfs", "tmpfs": "tmpfs", "devpts": "devpts", "mqueue": "mqueue",
	"cgroup": "cgroup2", "cgroup2": "cgroup2",
}

// PlanApp turns a container app's spec (its bundle at bundleDir, for
// relative paths) into its shares and its guest init's configuration:
// the root and each bind mount become 9p shares; /dev becomes the
// guest's own /dev; proc, sysfs, tmpfs, devpts, mqueue and cgroup mounts
// are made by the guest (cgroup as cgroup2); the process, host name and
// rlimits are the app's. A root the app asks to write (the annotation
// moor.root.writable, APP.json's rootWritable) is shared read-only and
// overlaid in the guest with a tmpfs. Bind sources must be directories
// (the caller checks: this is pure); other mount types are refused.
func PlanApp(app *specs.Spec, bundleDir string) (*App, error) {
	if app.Root == nil || app.Root.Path == "" {
		return nil, fmt.Errorf("plan app: root.path is not set")
	}
	if app.Process == nil || len(app.Process.Args) == 0 {
		return nil, fmt.Errorf("plan app: process.args is empty")
	}
	// rootWritable (rootfs's annotation) asks for an overlay on the
	// read-only root: the guest makes it, on a tmpfs of its own.
	overlay := app.Annotations["moor.root.writable"] == "true"
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(bundleDir, p)
	}
	a := &App{Shares: []AppShare{{Tag: RootTag, HostPath: abs(app.Root.Path), ReadOnly: app.Root.Readonly}}}
	a.Guest.Root = guest.Mount{Destination: "/", Type: guest.MountType9p, Source: RootTag}
	if app.Root.Readonly || overlay {
		a.Shares[0].ReadOnly = true
		a.Guest.Root.Options = []string{"ro"}
	}
	a.Guest.RootOverlay = overlay
	for i, m := range app.Mounts {
		field := fmt.Sprintf("plan app: mounts[%d] (%s)", i, m.Destination)
		if !path.IsAbs(m.Destination) {
			return nil, fmt.Errorf("%s: the destination is not absolute", field)
		}
		switch {
		case IsBind(m):
			tag := VolumeTag + strconv.Itoa(len(a.Shares)-1)
			ro := hasOption(m.Options, "ro")
			a.Shares = append(a.Shares, AppShare{Tag: tag, HostPath: abs(m.Source), ReadOnly: ro})
			a.Guest.Mounts = append(a.Guest.Mounts, guest.Mount{Destination: m.Destination, Type: guest.MountType9p,
				Source: tag, Options: keepOptions(m.Options, "ro", "nosuid", "nodev", "noexec")})
		case path.Clean(m.Destination) == "/dev":
			a.Guest.Mounts = append(a.Guest.Mounts, guest.Mount{Destination: "/dev", Type: guest.MountTypeBind, Source: "/dev"})
		case kernelFS[m.Type] != "":
			opts := m.Options
			if m.Type == "cgroup" { // cgroup v1's options are its controllers'
				opts = keepOptions(opts, "ro", "nosuid", "nodev", "noexec", "relatime")
			}
			a.Guest.Mounts = append(a.Guest.Mounts, guest.Mount{Destination: m.Destination, Type: kernelFS[m.Type],
				Source: m.Type, Options: opts})
		default:
			return nil, fmt.Errorf("%s: type %q cannot be made inside a VM", field, m.Type)
		}
	}
	a.Guest.Hostname = app.Hostname
	a.Guest.Process = guestProcess(app.Process)
	return a, nil
}

func guestProcess(p *specs.Process) guest.Process {
	gp := guest.Process{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd,
		UID: p.User.UID, GID: p.User.GID, AdditionalGids: p.User.AdditionalGids, Umask: p.User.Umask,
		NoNewPrivileges: p.NoNewPrivileges,
	}
	for _, r := range p.Rlimits {
		gp.Rlimits = append(gp.Rlimits, guest.Rlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft})
	}
	return gp
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// keepOptions keeps the options named.
func keepOptions(opts []string, keep ...string) []string {
	var out []string
	for _, o := range opts {
		if hasOption(keep, o) {
			out = append(out, o)
		}
	}
	return out
}

// appCmdline is the guest's kernel command line: the VM's (the serial
// console and quiet when it has none), then panic=-1 so that a guest whose
// init died ends (qemu runs it with -no-reboot).
func appCmdline(vm *devicemodel.VM) string {
	cmdline := vm.Cmdline
	if cmdline == "" {
		console := "ttyS0"
		if vm.Arch == devicemodel.ARM64 {
			console = "ttyAMA0"
		}
		cmdline = "console=" + console + " quiet"
	}
	return strings.TrimSpace(cmdline + " panic=-1")
}

// Shares are the app's shares as the VM description has them (host
// paths).
func (a *App) VMShares() []devicemodel.Share {
	out := make([]devicemodel.Share, len(a.Shares))
	for i, sh := range a.Shares {
		out[i] = devicemodel.Share{Tag: sh.Tag, Path: sh.HostPath, ReadOnly: sh.ReadOnly}
	}
	return out
}

// shareMounts binds each share into the task, one directory by its tag,
// and returns the shares as qemu sees them.
func shareMounts(m []specs.Mount, shares []devicemodel.Share) ([]specs.Mount, []devicemodel.Share) {
	var inTask []devicemodel.Share
	for _, sh := range shares {
		dest := path.Join(taskShareDir, sh.Tag)
		mode := "rw"
		if sh.ReadOnly {
			mode = "ro"
		}
		m = append(m, specs.Mount{Destination: dest, Type: "bind", Source: sh.Path, Options: []string{"rbind", mode, "nosuid", "nodev"}})
		inTask = append(inTask, devicemodel.Share{Tag: sh.Tag, Path: dest, ReadOnly: sh.ReadOnly})
	}
	return m, inTask
}
