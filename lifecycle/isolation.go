package lifecycle

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/nsutil"
	"github.com/lf-edge/moor/userns"
)

// checkIsolation refuses, before anything is made, a delegated cgroup, a
// user namespace or a time namespace that moor cannot give, with an error
// that names the field or what the host lacks.
func (s *Tasks) checkIsolation(spec *specs.Spec) error {
	if err := s.checkDelegation(spec); err != nil {
		return err
	}
	if err := s.userNS.Check(spec); err != nil {
		var field *userns.SpecError
		if errors.As(err, &field) {
			return fmt.Errorf("%w: %w", ErrInvalidSpec, err)
		}
		return err
	}
	return checkTimeNS(spec, s.opts.ProcRoot)
}

// namespaceOf finds the spec's namespace of type t.
func namespaceOf(spec *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	i := slices.IndexFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == t })
	if i < 0 {
		return specs.LinuxNamespace{}, false
	}
	return spec.Linux.Namespaces[i], true
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
