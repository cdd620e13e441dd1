package userns

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/reaper"
	"github.com/lf-edge/moor/rootfs"
)

// Host is the host side a task's user namespace is checked against and
// made on.
type Host struct {
	ProcRoot string // procfs, normally /proc: whether the kernel has user namespaces
	// StateRoot is the state root: the tasks' scratch directories lie
	// below it.
	StateRoot string
	// Reaper is the process's reaper, nil when it has none: it starts
	// the helper whose user namespace an idmapped mount takes.
	Reaper *reaper.Reaper
}

// A SpecError is a field of the spec that moor cannot give as it is; the
// message names the field.
type SpecError struct {
	Field string
	Err   error
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *SpecError) Unwrap() error { return e.Err }

func specErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Err: fmt.Errorf(format, args...)}
}

// ErrUnreachable is returned when a task in a user namespace could not
// reach its root: a directory on the way does not let it search.
var ErrUnreachable = errors.New("out of the reach of the task's root")

// Check checks a user namespace the task makes (one it joins has its
// mappings already), before anything is made: the kernel can make one;
// the UID and GID mappings map the task's root to an unprivileged host
// range; the task's root, as that host user, can reach its root
// directory; and what must be idmapped (a root not owned by the mapped
// root, volumes that ask) can be, on its filesystem. A spec field moor
// cannot give is a *SpecError.
func (h Host) Check(spec *specs.Spec) error {
	l := spec.Linux
	if l == nil {
		return nil
	}
	ns, ok := namespace(spec)
	if !ok {
		if len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0 {
			return specErr("linux.uidMappings", "set, but linux.namespaces has no user namespace")
		}
		return nil
	}
	if ns.Path != "" {
		return nil
	}
	if err := Supported(h.ProcRoot); err != nil {
		return &SpecError{Field: "linux.namespaces", Err: err}
	}
	if err := checkMappings("linux.uidMappings", l.UIDMappings); err != nil {
		return err
	}
	if err := checkMappings("linux.gidMappings", l.GIDMappings); err != nil {
		return err
	}
	uid, gid, _ := hostRoot(spec)
	reach, what := spec.Root.Path, "root.path"
	if rootInScratch(spec) {
		// Prepare makes the state root and the task's scratch
		// searchable; what lies above the state root must be so already.
		reach, what = filepath.Dir(h.StateRoot), "the root, mounted below the state root"
	}
	if err := checkSearchable(reach, uid, gid); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return h.checkIDMap(spec)
}

// namespace finds the spec's user namespace.
func namespace(spec *specs.Spec) (specs.LinuxNamespace, bool) {
	i := slices.IndexFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace })
	if i < 0 {
		return specs.LinuxNamespace{}, false
	}
	return spec.Linux.Namespaces[i], true
}

// rootInScratch says whether the task's root will be a mount in its
// scratch directory: idmapped, an overlay, or the host's root.
func rootInScratch(spec *specs.Spec) bool {
	return needsIDMap(spec) || rootfs.RootInScratch(spec)
}

// checkMappings checks one of a user namespace's ID mappings: ID 0 (the
// task's root) is mapped; no range is empty, overflows, overlaps another
// inside or on the host, or holds host ID 0: the task's IDs are an
// unprivileged host range.
func checkMappings(field string, m []specs.LinuxIDMapping) error {
	if len(m) == 0 {
		return specErr(field, "must be set for a user namespace of the task's own")
	}
	for i, r := range m {
		f := fmt.Sprintf("%s[%d]", field, i)
		if r.Size == 0 {
			return specErr(f+".size", "0: a range holds at least one ID")
		}
		if uint64(r.HostID)+uint64(r.Size) > math.MaxUint32 || uint64(r.ContainerID)+uint64(r.Size) > math.MaxUint32 {
			return specErr(f, "%d+%d or %d+%d passes the largest ID, %d", r.ContainerID, r.Size, r.HostID, r.Size, uint32(math.MaxUint32-1))
		}
		if r.HostID == 0 {
			return specErr(f+".hostID", "0: the host's root may not be mapped into a task; map an unprivileged range")
		}
		for j, o := range m[:i] {
			if overlap(r.ContainerID, o.ContainerID, r.Size, o.Size) || overlap(r.HostID, o.HostID, r.Size, o.Size) {
				return specErr(f, "overlaps %s[%d]", field, j)
			}
		}
	}
	if _, ok := hostID(m, 0); !ok {
		return specErr(field, "does not map ID 0, the task's root")
	}
	return nil
}

func overlap(a, b, sizeA, sizeB uint32) bool {
	return uint64(a) < uint64(b)+uint64(sizeB) && uint64(b) < uint64(a)+uint64(sizeA)
}

// hostRoot is the host UID and GID of the task's root (ID 0 in its user
// namespace); ok is false when the spec makes no user namespace of its
// own or does not map ID 0.
func hostRoot(spec *specs.Spec) (uid, gid uint32, ok bool) {
	if !rootfs.NewUserNS(spec) {
		return 0, 0, false
	}
	uid, uok := hostID(spec.Linux.UIDMappings, 0)
	gid, gok := hostID(spec.Linux.GIDMappings, 0)
	return uid, gid, uok && gok
}

// hostID is the host ID of the ID inside a user namespace with mappings m.
func hostID(m []specs.LinuxIDMapping, inside uint32) (uint32, bool) {
	for _, r := range m {
		if inside >= r.ContainerID && uint64(inside) < uint64(r.ContainerID)+uint64(r.Size) {
			host := uint64(r.HostID) + uint64(inside-r.ContainerID)
			return uint32(host), host <= math.MaxUint32
		}
	}
	return 0, false
}

// checkSearchable makes sure the host user uid (group gid, no others) can
// reach dir: dir and each directory above it must let that user search
// it. A task in a user namespace reaches its root as such a user.
func checkSearchable(dir string, uid, gid uint32) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, d, err)
		}
		if !canSearch(st, uid, gid) {
			return fmt.Errorf("%w: host user %d cannot search %s (mode %04o, owner %d:%d): allow it (chmod o+x)",
				ErrUnreachable, uid, d, st.Mode&0o7777, st.Uid, st.Gid)
		}
		if d == "/" {
			return nil
		}
	}
}

func canSearch(st unix.Stat_t, uid, gid uint32) bool {
	switch {
	case st.Uid == uid:
		return st.Mode&0o100 != 0
	case st.Gid == gid:
		return st.Mode&0o010 != 0
	default:
		return st.Mode&0o001 != 0
	}
}
