package lifecycle

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/nsutil"
	"github.com/lf-edge/moor/rootfs"
)

// checkIsolation refuses, before anything is made, a delegated cgroup, a
// user namespace or a time namespace that moor cannot give, with an error
// that names the field or what the host lacks.
func (s *Tasks) checkIsolation(spec *specs.Spec) error {
	if err := s.checkDelegation(spec); err != nil {
		return err
	}
	if err := s.checkUserNS(spec); err != nil {
		return err
	}
	return checkTimeNS(spec, s.opts.ProcRoot)
}

// isolate makes what checkIsolation allowed, on the task's libcontainer
// configuration before the container is made: the way to a root that
// lies in the task's scratch directory for a task in a user namespace,
// and a delegated cgroup (see delegate). Undo steps go on undo.
func (s *Tasks) isolate(rec *Record, cfg *configs.Config, undo *cleanup) error {
	if err := s.reachScratchRoot(rec, cfg); err != nil {
		return err
	}
	return s.delegate(rec, cfg, undo)
}

// namespaceOf finds the spec's namespace of type t.
func namespaceOf(spec *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	i := slices.IndexFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == t })
	if i < 0 {
		return specs.LinuxNamespace{}, false
	}
	return spec.Linux.Namespaces[i], true
}

// checkUserNS checks a user namespace the task makes (one it joins has
// its mappings already): the kernel can make one; the UID and GID
// mappings map the task's root to an unprivileged host range; the task's
// root, as that host user, can reach its root directory; and what must
// be idmapped (a root not owned by the mapped root, volumes that ask) can
// be, on its filesystem.
func (s *Tasks) checkUserNS(spec *specs.Spec) error {
	l := spec.Linux
	ns, ok := namespaceOf(spec, specs.UserNamespace)
	if !ok {
		if len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0 {
			return specErr("linux.uidMappings", "set, but linux.namespaces has no user namespace")
		}
		return nil
	}
	if ns.Path != "" {
		return nil
	}
	if err := nsutil.UserNSSupported(s.opts.ProcRoot); err != nil {
		return fmt.Errorf("%w: linux.namespaces: %w", ErrInvalidSpec, err)
	}
	if err := validateIDMappings("linux.uidMappings", l.UIDMappings); err != nil {
		return err
	}
	if err := validateIDMappings("linux.gidMappings", l.GIDMappings); err != nil {
		return err
	}
	uid, gid, _ := rootfs.HostRoot(spec)
	reach, what := spec.Root.Path, "root.path"
	if rootInScratch(spec) {
		// moor makes its state root and the task's scratch searchable;
		// what lies above the state root must be so already.
		reach, what = filepath.Dir(s.store.Root), "the root, mounted below the state root"
	}
	if err := rootfs.CheckSearchable(reach, uid, gid); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return rootfs.CheckIDMap(spec, s.opts.Reaper)
}

// rootInScratch says whether the task's root will be a mount in its
// scratch directory: idmapped, an overlay, or the host's root.
func rootInScratch(spec *specs.Spec) bool {
	return rootfs.NeedsIDMap(spec) || spec.Annotations[rootfs.WritableAnnotation] == "true" ||
		filepath.Clean(spec.Root.Path) == "/"
}

// validateIDMappings checks one of a user namespace's ID mappings: ID 0
// (the task's root) is mapped; no range is empty, overflows, overlaps
// another inside or on the host, or holds host ID 0: the task's IDs are
// an unprivileged host range.
func validateIDMappings(field string, m []specs.LinuxIDMapping) error {
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
	if _, ok := rootfs.HostID(m, 0); !ok {
		return specErr(field, "does not map ID 0, the task's root")
	}
	return nil
}

func overlap(a, b, sizeA, sizeB uint32) bool {
	return uint64(a) < uint64(b)+uint64(sizeB) && uint64(b) < uint64(a)+uint64(sizeA)
}

// reachScratchRoot lets a task in a user namespace reach a root that lies
// in its scratch directory: the state root and the scratch directories on
// the way become searchable (not readable) by everyone.
func (s *Tasks) reachScratchRoot(rec *Record, cfg *configs.Config) error {
	if !cfg.Namespaces.Contains(configs.NEWUSER) || cfg.Namespaces.PathOf(configs.NEWUSER) != "" {
		return nil
	}
	scratch := s.store.ScratchDir(rec.Namespace, rec.ID)
	if !strings.HasPrefix(cfg.Rootfs, scratch+"/") {
		return nil
	}
	root := filepath.Clean(s.store.Root)
	for dir := scratch; ; dir = filepath.Dir(dir) {
		if err := rootfs.AddSearch(dir); err != nil {
			return err
		}
		if dir == root || dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// timeClocks are the clocks a time namespace offsets, and the clock each
// offset is added to.
var timeClocks = map[string]int32{"monotonic": unix.CLOCK_MONOTONIC, "boottime": unix.CLOCK_BOOTTIME}

// checkTimeNS checks linux.timeOffsets and that the kernel has time
// namespaces when the task makes one: offsets need a time namespace of
// the task's own, name monotonic or boottime, and must leave the clock
// between 0 and the kernel's bound (what writing them would refuse after
// the task's namespaces exist).
func checkTimeNS(spec *specs.Spec, procRoot string) error {
	ns, ok := namespaceOf(spec, specs.TimeNamespace)
	offsets := spec.Linux.TimeOffsets
	if len(offsets) > 0 {
		if !ok {
			return specErr("linux.timeOffsets", "set, but linux.namespaces has no time namespace")
		}
		if ns.Path != "" {
			return specErr("linux.timeOffsets", "set, but the task joins the time namespace %s, whose offsets are fixed", ns.Path)
		}
		for name, off := range offsets {
			clock, known := timeClocks[name]
			if !known {
				return specErr("linux.timeOffsets."+name, "unknown clock: want monotonic or boottime")
			}
			var now unix.Timespec
			if err := unix.ClockGettime(clock, &now); err != nil {
				return fmt.Errorf("read clock %s: %w", name, err)
			}
			if err := checkTimeOffset(now.Sec, off); err != nil {
				return specErr("linux.timeOffsets."+name, "%v", err)
			}
		}
	}
	if ok && ns.Path == "" {
		if err := nsutil.TimeNSSupported(procRoot); err != nil {
			return fmt.Errorf("%w: linux.namespaces: %w", ErrInvalidSpec, err)
		}
	}
	return nil
}

// maxClockSec is the largest clock value a time namespace may reach, in
// seconds: KTIME_SEC_MAX / 2, as the kernel checks it.
const maxClockSec int64 = math.MaxInt64 / 1_000_000_000 / 2

// checkTimeOffset checks one offset against the clock's value now.
func checkTimeOffset(nowSec int64, off specs.LinuxTimeOffset) error {
	if off.Nanosecs >= 1_000_000_000 {
		return fmt.Errorf("nanosecs %d: want less than a second", off.Nanosecs)
	}
	if off.Secs < -maxClockSec || off.Secs > maxClockSec || nowSec+off.Secs < 0 || nowSec+off.Secs > maxClockSec {
		return fmt.Errorf("secs %d: the clock (now %d s) would leave 0 to %d s", off.Secs, nowSec, maxClockSec)
	}
	return nil
}
