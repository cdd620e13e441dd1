package taskspec

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel"
)

// Where things are inside a hypervisor task, beside devicemodel.TaskRunDir.
const (
	TaskAnchor  = "/run/moor/anchor" // the anchor binary, bind-mounted read-only
	taskBootDir = "/run/moor/boot"
	taskDiskDir = "/run/moor/disk"
)

// cfsPeriod is EVE's CFS period; the quota is one period per vCPU.
const cfsPeriod = 100000

// Options say where a hypervisor task's pieces come from.
type Options struct {
	// Loader is the loader bundle's spec, its root.path absolute. Nil
	// runs the task in the host's own root, read-only.
	Loader *specs.Spec
	// Moor is the moor binary on the host: the poststop hook, and the
	// task's process ("moor anchor") when Anchor is empty.
	Moor string
	// Anchor is the lean anchor binary (moor-anchor) on the host, the
	// task's process; empty falls back to Moor.
	Anchor string
	// RunDir is the task's run directory on the host.
	RunDir string
	// Grace is the anchor's wait between powerdown and hard stop.
	Grace time.Duration
	// DeviceModel is qemu's (or xl's) path inside the task; empty lets
	// the anchor look it up in PATH.
	DeviceModel string
	// XL is xl's path on the host, for the poststop hook of a Xen task.
	XL string
	// CgroupsPath is the task's cgroup; empty leaves the supervisor's
	// default.
	CgroupsPath string
	// App makes the guest run a container app (PlanApp) from the
	// initramfs App.Initramfs, which must be in RunDir.
	App *App
}

// Build builds the OCI spec of a hypervisor task and the VM description
// its anchor reads (the same VM with paths as the task sees them).
func Build(vm *devicemodel.VM, o Options) (*specs.Spec, *devicemodel.VM, error) {
	if vm.Mode == devicemodel.ModeNoHyper {
		return nil, nil, fmt.Errorf("build task spec: %w: mode: nohyper runs no device model: run it as a container task", devicemodel.ErrInvalidVM)
	}
	if err := vm.CheckSizes(); err != nil {
		return nil, nil, fmt.Errorf("build task spec: %w", err)
	}
	if !absolute(o.Moor, o.RunDir) || (o.Anchor != "" && !absolute(o.Anchor)) {
		return nil, nil, errors.New("build task spec: moor, anchor and run dir must be absolute paths")
	}
	if o.Grace <= 0 {
		o.Grace = devicemodel.DefaultGrace
	}
	inTask := *vm
	var loaderMounts []specs.Mount
	if o.Loader != nil {
		loaderMounts = loaderBinds(o.Loader)
	}
	mounts := taskMounts(o, loaderMounts)
	mounts, inTask.Kernel = bindFile(mounts, vm.Kernel, taskBootDir+"/kernel", true)
	mounts, inTask.Initrd = bindFile(mounts, vm.Initrd, taskBootDir+"/initrd", true)
	mounts, inTask.Firmware = bindFile(mounts, vm.Firmware, taskBootDir+"/firmware", true)
	if vm.FirmwareVars != "" {
		// Not the template but the VM's own copy, which moor vm spec
		// makes in the run directory.
		inTask.FirmwareVars = path.Join(devicemodel.TaskRunDir, devicemodel.VarsFile)
	}
	inTask.Disks = make([]devicemodel.Disk, len(vm.Disks))
	for i, d := range vm.Disks {
		inTask.Disks[i] = d
		mounts, inTask.Disks[i].Path = bindFile(mounts, d.Path, taskDiskDir+"/"+strconv.Itoa(i), d.ReadOnly)
	}
	shares := vm.Shares
	if o.App != nil {
		if err := appVM(&inTask, vm, o); err != nil {
			return nil, nil, fmt.Errorf("build task spec: %w", err)
		}
		shares = append(append([]devicemodel.Share{}, shares...), o.App.VMShares()...)
	}
	mounts, inTask.Shares = shareMounts(mounts, shares)
	if len(inTask.Shares) > 0 {
		if err := inTask.Validate(); err != nil { // tags the app's shares may repeat
			return nil, nil, fmt.Errorf("build task spec: %w", err)
		}
	}
	if len(vm.NICs) == 0 {
		inTask.NICs = nil
	}
	if len(vm.Disks) == 0 {
		inTask.Disks = nil
	}

	s := &specs.Spec{Version: specs.Version}
	if o.Loader != nil {
		s = loaderBase(o.Loader)
	} else {
		s.Root = &specs.Root{Path: "/", Readonly: true}
		s.Hostname = vm.Name
	}
	s.Root.Readonly = true
	s.Mounts = mounts
	s.Process = anchorProcess(vm, o)
	s.Linux = taskLinux(s.Linux, vm, o)
	s.Annotations = annotations(s.Annotations, vm, o)
	s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{
		Path: o.Moor, Args: []string{"moor", "vm", "poststop"}, Timeout: intPtr(60),
	}}}
	return s, &inTask, nil
}

// appVM makes the in-task VM boot the app's initramfs with moor's kernel
// command line, and flags it as an app VM.
func appVM(inTask, vm *devicemodel.VM, o Options) error {
	if vm.Initrd != "" {
		return fmt.Errorf("%w: initrd: a container app boots the initramfs moor builds", devicemodel.ErrInvalidVM)
	}
	if vm.Kernel == "" {
		return fmt.Errorf("%w: kernel: a container app boots a kernel: name it", devicemodel.ErrInvalidVM)
	}
	if filepath.Dir(o.App.Initramfs) != filepath.Clean(o.RunDir) {
		return fmt.Errorf("the initramfs %s is not in the run directory %s", o.App.Initramfs, o.RunDir)
	}
	inTask.App = true
	inTask.Initrd = path.Join(devicemodel.TaskRunDir, filepath.Base(o.App.Initramfs))
	inTask.Cmdline = appCmdline(vm)
	return nil
}

// loaderBase keeps of the loader's spec what the task needs: its root,
// its devices and annotations; the rest is the task's own.
func loaderBase(l *specs.Spec) *specs.Spec {
	s := &specs.Spec{Version: specs.Version, Hostname: l.Hostname}
	root := *l.Root
	s.Root = &root
	s.Linux = &specs.Linux{}
	if l.Linux != nil {
		s.Linux.Devices = append(s.Linux.Devices, l.Linux.Devices...)
		s.Linux.Sysctl = l.Linux.Sysctl
	}
	s.Annotations = map[string]string{}
	for k, v := range l.Annotations {
		s.Annotations[k] = v
	}
	return s
}

// IsBind reports whether a mount of a spec is a bind mount (its type, or
// a bind or rbind option).
func IsBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// loaderBinds are the loader's bind mounts; its other mounts (proc,
// tmpfs...) are the task's own.
func loaderBinds(l *specs.Spec) []specs.Mount {
	var out []specs.Mount
	for _, m := range l.Mounts {
		if IsBind(m) {
			out = append(out, m)
		}
	}
	return out
}

// covered reports whether one of the mounts is at dest or above it.
func covered(mounts []specs.Mount, dest string) bool {
	for _, m := range mounts {
		rel, err := filepath.Rel(path.Clean(m.Destination), dest)
		if err == nil && filepath.IsLocal(rel) {
			return true
		}
	}
	return false
}

// taskMounts are the kernel filesystems, then the loader's binds, then the
// anchor's own binds. /run is a tmpfs of the task's unless the loader binds
// one, so nothing is created in the root, which is read-only and may be the
// host's.
func taskMounts(o Options, loader []specs.Mount) []specs.Mount {
	kernel := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}},
	}
	var m []specs.Mount
	for _, k := range kernel {
		if !covered(loader, k.Destination) {
			m = append(m, k)
		}
	}
	m = append(m, loader...)
	return append(m,
		specs.Mount{Destination: devicemodel.TaskRunDir, Type: "bind", Source: o.RunDir, Options: []string{"rbind", "rw", "nosuid", "nodev"}},
		specs.Mount{Destination: TaskAnchor, Type: "bind", Source: o.anchorBinary(), Options: []string{"bind", "ro", "nosuid", "nodev"}},
	)
}

// bindFile binds a host file at dest; an empty src binds nothing.
func bindFile(m []specs.Mount, src, dest string, ro bool) ([]specs.Mount, string) {
	if src == "" {
		return m, ""
	}
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return append(m, specs.Mount{Destination: dest, Type: "bind", Source: src, Options: []string{"bind", mode, "nosuid"}}), dest
}

// anchorBinary is the host's binary bind-mounted at TaskAnchor.
func (o Options) anchorBinary() string {
	if o.Anchor != "" {
		return o.Anchor
	}
	return o.Moor
}

func absolute(paths ...string) bool {
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return false
		}
	}
	return true
}

// anchorProcess runs the lean anchor, or "moor anchor" without it: the
// same flags either way.
func anchorProcess(vm *devicemodel.VM, o Options) *specs.Process {
	args := []string{TaskAnchor}
	if o.Anchor == "" {
		args = append(args, "anchor")
	}
	args = append(args, "--dir", devicemodel.TaskRunDir, "--grace", o.Grace.String())
	if o.DeviceModel != "" {
		args = append(args, "--device-model", o.DeviceModel)
	}
	caps := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_NET_ADMIN", "CAP_IPC_LOCK",
		"CAP_SYS_NICE",
	}
	if vm.Hypervisor == devicemodel.Xen {
		caps = append(caps, "CAP_SYS_ADMIN") // xl talks to privcmd and xenstore
	}
	oom := 0
	return &specs.Process{
		Args: args,
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen/bin",
			// The anchor needs one CPU. Set from the start, the Go runtime
			// makes one P and one allocation cache; set at run time, it
			// would have made two and pay for flushing one.
			"GOMAXPROCS=1",
		},
		Cwd:          devicemodel.TaskRunDir,
		Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 4096}},
		OOMScoreAdj:  &oom,
	}
}

func taskLinux(l *specs.Linux, vm *devicemodel.VM, o Options) *specs.Linux {
	if l == nil {
		l = &specs.Linux{}
	}
	l.CgroupsPath = o.CgroupsPath
	l.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
		{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.CgroupNamespace}}
	if vm.IsQemu() && len(vm.NICs) == 0 {
		// Taps go into the host's bridges: only a VM without NICs and
		// not under Xen (whose vifs dom0 makes) gets a network of its own.
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	limit := devicemodel.MemoryLimit(vm) // Build checked the sizes
	quota, period := int64(cfsPeriod*vm.VCPUs), uint64(cfsPeriod)
	res := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: &limit},
		CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period, Cpus: vm.CPUs},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	l.Resources = res
	add := func(p string, major, minor int64) {
		mode := os.FileMode(0o600)
		l.Devices = append(l.Devices, specs.LinuxDevice{Path: p, Type: "c", Major: major, Minor: minor, FileMode: &mode})
	}
	if vm.Hypervisor == devicemodel.KVM {
		add("/dev/kvm", 10, 232)
	}
	if len(vm.NICs) > 0 {
		add("/dev/net/tun", 10, 200)
	}
	for _, d := range l.Devices {
		major, minor := d.Major, d.Minor
		res.Devices = append(res.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: "rwm"})
	}
	l.MaskedPaths = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"}
	l.ReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	return l
}

func annotations(a map[string]string, vm *devicemodel.VM, o Options) map[string]string {
	if a == nil {
		a = map[string]string{}
	}
	a[devicemodel.AnnotationName] = vm.Name
	a[devicemodel.AnnotationHypervisor] = string(vm.Hypervisor)
	a[devicemodel.AnnotationRunDir] = o.RunDir
	if vm.Hypervisor == devicemodel.Xen && o.XL != "" {
		a[devicemodel.AnnotationXL] = o.XL
	}
	return a
}

func intPtr(i int) *int { return &i }

// CheckLoader reports a loader spec that cannot carry a task.
func CheckLoader(l *specs.Spec) error {
	if l.Root == nil || !filepath.IsAbs(l.Root.Path) {
		return fmt.Errorf("check loader: root.path must be set and absolute")
	}
	return nil
}
