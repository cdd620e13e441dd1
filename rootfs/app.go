package rootfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/cpulist"
	"github.com/lf-edge/moor/ifname"
)

// WritableAnnotation, set to "true", asks for a writable root: an overlay
// on the read-only root.path whose changes live in the task's scratch
// directory and go with the task.
const WritableAnnotation = "moor.root.writable"

// ErrInvalidApp is returned for app settings that are wrong or conflict;
// the message names the field.
var ErrInvalidApp = errors.New("invalid app settings")

func appErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidApp, field, fmt.Sprintf(format, args...))
}

// cpuPeriod is the CFS period the cpus setting's quota is counted in (µs).
const cpuPeriod = 100000

// The largest sizes APP.json may give; past them a product overflows or
// the kernel refuses the value once the task is half made.
const (
	// MaxMemoryMiB is the largest memoryMiB whose limit in bytes an int64
	// holds: 2^43-1 MiB.
	MaxMemoryMiB = math.MaxInt64 >> 20
	// maxCFSQuota is the kernel's largest CFS quota, 2^44-1 µs
	// (max_cfs_runtime): a larger cpu.max or cfs_quota_us is EINVAL.
	maxCFSQuota = 1<<44 - 1
	// MaxCPUs is the largest cpus whose quota (cpus × cpuPeriod) the
	// kernel takes.
	MaxCPUs = maxCFSQuota / cpuPeriod
)

// App is the app's own settings (APP.json); each set field wins over the
// seed. See the README for the format.
type App struct {
	Args     []string `json:"args,omitempty"`
	Env      []string `json:"env,omitempty"` // NAME=value, added or replacing by name
	Cwd      string   `json:"cwd,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	// MemoryMiB and CPUs are nil when not set; set, they must be
	// positive.
	MemoryMiB    *int64            `json:"memoryMiB,omitempty"`
	CPUs         *int              `json:"cpus,omitempty"`   // vCPUs: a quota of CPUs × the period
	CPUSet       string            `json:"cpuset,omitempty"` // e.g. "0-1,3"
	RootWritable bool              `json:"rootWritable,omitempty"`
	Volumes      []Volume          `json:"volumes,omitempty"`
	NetDevices   map[string]NetDev `json:"netDevices,omitempty"` // host interface name → how it appears inside
	// NetNamespace, when set, is a network namespace (a file such as
	// /proc/<pid>/ns/net or a bind mount of one) the task joins.
	NetNamespace string            `json:"netNamespace,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// UserNamespace, when set, gives the task a user namespace of its own.
	UserNamespace *UserNS `json:"userNamespace,omitempty"`
}

// Volume is a directory bind-mounted into the task.
type Volume struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"readonly,omitempty"`
	// IDMap mounts the volume idmapped through the task's user namespace.
	IDMap bool `json:"idmap,omitempty"`
}

// NetDev says how a host interface appears in the task.
type NetDev struct {
	Name string `json:"name,omitempty"` // the name inside; the host's name when empty
}

// ParseApp reads APP.json. Unknown fields are errors, so a misspelt
// setting is never silently ignored.
func ParseApp(r io.Reader) (*App, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var a App
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("parse app settings: %w: %w", ErrInvalidApp, err)
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("parse app settings: %w", err)
	}
	return &a, nil
}

// Validate checks each setting alone and against the others.
func (a *App) Validate() error {
	if len(a.Args) > 0 && a.Args[0] == "" {
		return appErr("args[0]", "must name a program")
	}
	for i, e := range a.Env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			return appErr(fmt.Sprintf("env[%d]", i), "%q: want NAME=value", e)
		}
	}
	if a.Cwd != "" && !path.IsAbs(a.Cwd) {
		return appErr("cwd", "%q is not absolute", a.Cwd)
	}
	if err := a.validateSizes(); err != nil {
		return err
	}
	if _, ok := a.Annotations[WritableAnnotation]; ok {
		return appErr("annotations."+WritableAnnotation, "rootWritable says whether the root is writable")
	}
	if err := validateVolumes(a.Volumes); err != nil {
		return err
	}
	if err := a.UserNamespace.validate(); err != nil {
		return err
	}
	return validateNetDevices(a.NetDevices, a.NetNamespace)
}

// validateSizes checks memoryMiB and cpus: positive when set, and small
// enough that the limit in bytes and the CFS quota computed from them hold.
func (a *App) validateSizes() error {
	if m := a.MemoryMiB; m != nil && (*m <= 0 || *m > MaxMemoryMiB) {
		return appErr("memoryMiB", "%d: want 1 to %d MiB (the largest limit in bytes an int64 holds)", *m, int64(MaxMemoryMiB))
	}
	if c := a.CPUs; c != nil && (*c <= 0 || *c > MaxCPUs) {
		return appErr("cpus", "%d: want 1 to %d (past it the quota, cpus × %d µs, is more than the kernel's %d µs)", *c, MaxCPUs, cpuPeriod, maxCFSQuota)
	}
	if a.CPUSet != "" {
		cpus, err := cpulist.Parse(a.CPUSet)
		if err != nil {
			return appErr("cpuset", "%q: %v", a.CPUSet, err)
		}
		if a.CPUs != nil && *a.CPUs > len(cpus) {
			return appErr("cpus", "%d is more than the %d CPUs of cpuset %q", *a.CPUs, len(cpus), a.CPUSet)
		}
	}
	return nil
}

func validateVolumes(vols []Volume) error {
	seen := map[string]int{}
	for i, v := range vols {
		field := fmt.Sprintf("volumes[%d]", i)
		if !path.IsAbs(v.Source) {
			return appErr(field+".source", "%q is not an absolute path", v.Source)
		}
		if !path.IsAbs(v.Destination) || path.Clean(v.Destination) == "/" {
			return appErr(field+".destination", "%q: want an absolute path below /", v.Destination)
		}
		dst := path.Clean(v.Destination)
		if j, dup := seen[dst]; dup {
			return appErr(field+".destination", "%s is also volumes[%d]'s destination", dst, j)
		}
		seen[dst] = i
	}
	return nil
}

func validateNetDevices(devs map[string]NetDev, netns string) error {
	inside := map[string]string{}
	for host, d := range devs {
		field := "netDevices." + host
		if !ifname.Valid(host) {
			return appErr(field, "%q is not an interface name", host)
		}
		name := host
		if d.Name != "" {
			name = d.Name
		}
		if !ifname.Valid(name) {
			return appErr(field+".name", "%q is not an interface name", name)
		}
		if other, dup := inside[name]; dup {
			return appErr(field+".name", "%s is also what %s is called inside", name, other)
		}
		inside[name] = host
	}
	if netns != "" && !path.IsAbs(netns) {
		return appErr("netNamespace", "%q is not an absolute path", netns)
	}
	return nil
}

// ApplyApp lays the app's settings over a seed spec and returns the
// result; seed is not changed. Settings that conflict with the seed (a
// writable host root, interfaces for a task in the host's network
// namespace) are errors naming the field.
func ApplyApp(seed *specs.Spec, a *App) (*specs.Spec, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	s, err := clone(seed)
	if err != nil {
		return nil, err
	}
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	if len(a.Args) > 0 {
		s.Process.Args = append([]string{}, a.Args...)
	}
	s.Process.Env = MergeEnv(s.Process.Env, a.Env)
	if a.Cwd != "" {
		s.Process.Cwd = a.Cwd
	}
	if a.Hostname != "" {
		if !hasNamespace(s, specs.UTSNamespace) {
			return nil, appErr("hostname", "the task shares the host's UTS namespace")
		}
		s.Hostname = a.Hostname
	}
	applyResources(s, a)
	if a.RootWritable {
		if s.Root == nil || path.Clean(s.Root.Path) == "/" {
			return nil, appErr("rootWritable", "the host's root is read-only")
		}
		s.Root.Readonly = false
		setAnnotation(s, WritableAnnotation, "true")
	}
	s.Mounts = append(s.Mounts, VolumeMounts(a.Volumes)...)
	if err := applyUserNS(s, a); err != nil {
		return nil, err
	}
	if err := applyNet(s, a); err != nil {
		return nil, err
	}
	for k, v := range a.Annotations {
		setAnnotation(s, k, v)
	}
	return s, nil
}

func applyResources(s *specs.Spec, a *App) {
	if a.MemoryMiB == nil && a.CPUs == nil && a.CPUSet == "" {
		return
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	r := s.Linux.Resources
	if r == nil {
		r = &specs.LinuxResources{}
		s.Linux.Resources = r
	}
	if a.MemoryMiB != nil {
		limit := *a.MemoryMiB << 20 // validateSizes keeps it below 2^63
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		r.Memory.Limit = &limit
		if r.Memory.Swap != nil && *r.Memory.Swap != -1 && *r.Memory.Swap < limit {
			r.Memory.Swap = &limit // memory+swap may not be below the new limit
		}
		if r.Memory.Reservation != nil && *r.Memory.Reservation > limit {
			r.Memory.Reservation = nil
		}
	}
	if a.CPUs != nil || a.CPUSet != "" {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
	}
	if a.CPUs != nil {
		quota, period := int64(*a.CPUs)*cpuPeriod, uint64(cpuPeriod) // at most maxCFSQuota
		r.CPU.Quota, r.CPU.Period = &quota, &period
	}
	if a.CPUSet != "" {
		r.CPU.Cpus = a.CPUSet
	}
}

func applyNet(s *specs.Spec, a *App) error {
	if len(a.NetDevices) == 0 && a.NetNamespace == "" {
		return nil
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	i := namespaceIndex(s, specs.NetworkNamespace)
	if a.NetNamespace != "" {
		if i < 0 {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
			i = len(s.Linux.Namespaces) - 1
		}
		s.Linux.Namespaces[i].Path = a.NetNamespace
	}
	if len(a.NetDevices) == 0 {
		return nil
	}
	if i < 0 {
		return appErr("netDevices", "the task shares the host's network namespace; give it one of its own or a netNamespace")
	}
	if s.Linux.NetDevices == nil {
		s.Linux.NetDevices = map[string]specs.LinuxNetDevice{}
	}
	for host, d := range a.NetDevices {
		s.Linux.NetDevices[host] = specs.LinuxNetDevice{Name: d.Name}
	}
	return nil
}

// VolumeMounts turns volumes into bind mounts, read-only or read-write.
func VolumeMounts(vols []Volume) []specs.Mount {
	var out []specs.Mount
	for _, v := range vols {
		mode := "rw"
		if v.ReadOnly {
			mode = "ro"
		}
		out = append(out, specs.Mount{
			Destination: path.Clean(v.Destination),
			Type:        "bind",
			Source:      v.Source,
			Options:     volumeOptions(v, mode),
		})
	}
	return out
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return namespaceIndex(s, t) >= 0
}

func namespaceIndex(s *specs.Spec, t specs.LinuxNamespaceType) int {
	if s.Linux == nil {
		return -1
	}
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return i
		}
	}
	return -1
}

func setAnnotation(s *specs.Spec, k, v string) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[k] = v
}
