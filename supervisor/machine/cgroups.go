package machine

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// CgroupMode is the layout of the cgroup hierarchies a machine mounts.
type CgroupMode int

const (
	// CgroupV2 is the unified hierarchy alone at /sys/fs/cgroup.
	CgroupV2 CgroupMode = iota
	// CgroupV1 is one v1 hierarchy per controller, /sys/fs/cgroup/<name>.
	CgroupV1
	// CgroupHybrid is CgroupV1 plus the unified hierarchy, without
	// controllers, at /sys/fs/cgroup/unified (systemd's and EVE's hybrid).
	CgroupHybrid
)

func (m CgroupMode) String() string {
	switch m {
	case CgroupV1:
		return "v1"
	case CgroupHybrid:
		return "hybrid"
	}
	return "v2"
}

// CgroupParam is the kernel command-line parameter that asks for a mode:
// moor.cgroup=v1, hybrid or v2.
const CgroupParam = "moor.cgroup"

// CgroupSupport is what the kernel offers: the cgroup2 file system, and
// the controllers it lets v1 hierarchies have.
type CgroupSupport struct {
	V2          bool
	Controllers []string // enabled in /proc/cgroups and not taken by cgroup_no_v1
}

// ReadCgroupSupport reads /proc/filesystems, /proc/cgroups and the
// kernel command line.
func ReadCgroupSupport(filesystems, cgroups io.Reader, cmdline string) (CgroupSupport, error) {
	var s CgroupSupport
	v1 := false
	sc := bufio.NewScanner(filesystems)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[len(f)-1] {
		case "cgroup2":
			s.V2 = true
		case "cgroup":
			v1 = true
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read /proc/filesystems: %w", err)
	}
	noV1 := strings.Split(cmdlineValue(cmdline, "cgroup_no_v1"), ",")
	sc = bufio.NewScanner(cgroups)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || strings.HasPrefix(f[0], "#") || f[3] != "1" {
			continue
		}
		if v1 && !slices.Contains(noV1, "all") && !slices.Contains(noV1, f[0]) {
			s.Controllers = append(s.Controllers, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read /proc/cgroups: %w", err)
	}
	return s, nil
}

// cmdlineValue is the value of the last key=value on the kernel command
// line ("" when absent).
func cmdlineValue(cmdline, key string) string {
	v := ""
	for _, f := range strings.Fields(cmdline) {
		if val, ok := strings.CutPrefix(f, key+"="); ok {
			v = val
		}
	}
	return v
}

// ChooseCgroupMode picks the layout: the one moor.cgroup= asks for (or
// linuxkit.unified_cgroup_hierarchy=0, linuxkit's word for v1), else v2
// as linuxkit does; then what the kernel lacks overrides the wish. It
// says why, for the log.
func ChooseCgroupMode(s CgroupSupport, cmdline string) (CgroupMode, string) {
	mode, why := CgroupV2, "the default"
	switch v := cmdlineValue(cmdline, CgroupParam); v {
	case "v1":
		mode, why = CgroupV1, CgroupParam+"=v1"
	case "hybrid":
		mode, why = CgroupHybrid, CgroupParam+"=hybrid"
	case "v2":
		mode, why = CgroupV2, CgroupParam+"=v2"
	case "":
		if cmdlineValue(cmdline, "linuxkit.unified_cgroup_hierarchy") == "0" {
			mode, why = CgroupV1, "linuxkit.unified_cgroup_hierarchy=0"
		}
	default:
		why = fmt.Sprintf("the default (%s=%s is not v1, hybrid or v2)", CgroupParam, v)
	}
	switch {
	case !s.V2 && len(s.Controllers) == 0:
		return CgroupV1, "the kernel has neither cgroup2 nor v1 controllers"
	case mode == CgroupV2 && !s.V2:
		return CgroupV1, why + ", but the kernel has no cgroup2"
	case mode != CgroupV2 && len(s.Controllers) == 0:
		return CgroupV2, why + ", but the kernel has no v1 controllers"
	case mode == CgroupHybrid && !s.V2:
		return CgroupV1, why + ", but the kernel has no cgroup2"
	}
	return mode, why
}

// cgroupRoot is where the hierarchies go.
const cgroupRoot = "/sys/fs/cgroup"

// CgroupMounts is the plan of the mode's mounts, in order.
func CgroupMounts(mode CgroupMode, controllers []string) []Mount {
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if mode == CgroupV2 {
		return []Mount{{Source: "cgroup2", Target: cgroupRoot, FSType: "cgroup2", Flags: flags}}
	}
	ms := []Mount{{Source: "cgroup_root", Target: cgroupRoot, FSType: "tmpfs", Flags: flags, Data: "mode=0755"}}
	for _, c := range controllers {
		ms = append(ms, Mount{Source: c, Target: cgroupRoot + "/" + c, FSType: "cgroup", Flags: flags, Data: c})
	}
	if mode == CgroupHybrid {
		ms = append(ms, Mount{Source: "cgroup2", Target: cgroupRoot + "/unified", FSType: "cgroup2", Flags: flags})
	}
	return ms
}
