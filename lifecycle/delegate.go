package lifecycle

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/procfs"
)

// DelegateAnnotation, "true" in a spec, delegates the task's cgroup to
// the task. Its limits are set on its cgroup (linux.cgroupsPath), which
// moor makes; the task's processes run in a cgroup below it
// (cgroup.DelegateLeaf) with no limits of its own, which the task sees as
// its root through a cgroup namespace of its own and a read-write
// /sys/fs/cgroup. There it may make cgroups, move its processes and limit
// them; raising its root's limits does not raise the ones moor set,
// which stay in the parent, out of its reach. Delete removes the whole
// tree, with the cgroups the task made.
const DelegateAnnotation = "moor.cgroup.delegate"

// delegated says whether the annotations delegate the task's cgroup.
func delegated(annotations map[string]string) bool {
	return annotations[DelegateAnnotation] == "true"
}

// checkDelegation refuses a delegation moor cannot give: it needs the
// cgroupfs driver, an absolute cgroup path that does not exist yet (moor
// makes it, with the limits), and a cgroup namespace of the task's own.
func (s *Tasks) checkDelegation(spec *specs.Spec) error {
	const field = "annotations." + DelegateAnnotation
	switch v := spec.Annotations[DelegateAnnotation]; v {
	case "", "false":
		return nil
	case "true":
	default:
		return specErr(field, "%q: want true or false", v)
	}
	if s.opts.SystemdCgroup {
		return specErr(field, "needs the cgroupfs driver: with systemd's, systemd delegates (Delegate=yes)")
	}
	p := spec.Linux.CgroupsPath
	if !path.IsAbs(p) {
		return specErr("linux.cgroupsPath", "%q: a delegated task needs an absolute cgroup path", p)
	}
	if ns, ok := namespaceOf(spec, specs.CgroupNamespace); ok && ns.Path != "" {
		return specErr("linux.namespaces", "a delegated task gets a cgroup namespace of its own; it cannot join %s", ns.Path)
	}
	if cgroup.Exists(s.hierarchies(), p) {
		return fmt.Errorf("%w: linux.cgroupsPath: cgroup %s exists already; a delegated task's cgroup is made by moor", ErrInvalidSpec, p)
	}
	return nil
}

// delegate makes a delegated task's cgroup with its limits and hands the
// task the cgroup below it (see DelegateAnnotation): cfg is pointed at
// that leaf, with no limits but the device rules, a cgroup namespace and
// a read-write cgroupfs. In a user namespace the leaf is handed to the
// task's root. The undo removes the tree.
func (s *Tasks) delegate(rec *Record, cfg *configs.Config, undo *cleanup) error {
	if !delegated(rec.Annotations) {
		return nil
	}
	parent, limits := cfg.Cgroups.Path, cfg.Cgroups.Resources
	var owner *cgroup.Owner
	if cfg.Namespaces.Contains(configs.NEWUSER) {
		uid, err := cfg.HostRootUID()
		if err != nil {
			return fmt.Errorf("delegate cgroup %s: %w", parent, err)
		}
		gid, err := cfg.HostRootGID()
		if err != nil {
			return fmt.Errorf("delegate cgroup %s: %w", parent, err)
		}
		owner = &cgroup.Owner{UID: uid, GID: gid}
	}
	if err := cgroup.MakeDelegated(parent, limits, owner); err != nil {
		return err
	}
	undo.push(func() {
		if err := s.removeDelegated(context.Background(), rec); err != nil {
			s.log.Warn("undo create: remove delegated cgroup", "id", rec.ID, "err", err)
		}
	})
	cfg.Cgroups.Path = path.Join(parent, cgroup.DelegateLeaf)
	cfg.Cgroups.Resources = &cgroups.Resources{Devices: limits.Devices, SkipDevices: limits.SkipDevices}
	if !cfg.Namespaces.Contains(configs.NEWCGROUP) {
		cfg.Namespaces.Add(configs.NEWCGROUP, "")
	}
	writableCgroupfs(cfg)
	return nil
}

// cgroupfsDir is where a task's cgroupfs is mounted.
const cgroupfsDir = "/sys/fs/cgroup"

// writableCgroupfs mounts the cgroupfs read-write at /sys/fs/cgroup
// (adding the mount when the spec has none) and takes it out of the
// masked and read-only paths.
func writableCgroupfs(cfg *configs.Config) {
	found := false
	for _, m := range cfg.Mounts {
		if m.Device == "cgroup" || m.Device == "cgroup2" {
			m.Flags &^= unix.MS_RDONLY
			found = found || path.Clean(m.Destination) == cgroupfsDir
		}
	}
	if !found {
		cfg.Mounts = append(cfg.Mounts, &configs.Mount{
			Source: "cgroup", Device: "cgroup", Destination: cgroupfsDir,
			Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RELATIME,
		})
	}
	under := func(p string) bool {
		p = path.Clean(p)
		return p == cgroupfsDir || strings.HasPrefix(p, cgroupfsDir+"/")
	}
	cfg.ReadonlyPaths = slices.DeleteFunc(cfg.ReadonlyPaths, under)
	cfg.MaskPaths = slices.DeleteFunc(cfg.MaskPaths, under)
}

// thawDelegated thaws the cgroups a delegated task may have frozen
// itself, so that a SIGKILL reaches every process (see cgroup.ThawTree).
func (h *handle) thawDelegated() {
	if delegated(h.rec.Annotations) && path.IsAbs(h.rec.CgroupPath) {
		if err := cgroup.ThawTree(h.t.hierarchies(), h.rec.CgroupPath); err != nil {
			h.t.log.Warn("thaw delegated cgroups", "id", h.rec.ID, "err", err)
		}
	}
}

// removeDelegated kills every process left in a delegated task's cgroup
// tree, thawing what the task froze, and removes the tree, deepest
// first: the task's own cgroup and the ones it made below it.
func (s *Tasks) removeDelegated(ctx context.Context, rec *Record) error {
	p := rec.CgroupPath
	if !delegated(rec.Annotations) || !path.IsAbs(p) {
		return nil
	}
	hier := s.hierarchies()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if err := cgroup.ThawTree(hier, p); err != nil {
			s.log.Warn("thaw delegated cgroups", "id", rec.ID, "err", err)
		}
		pids, err := cgroup.TreePIDs(hier, p)
		if err != nil {
			return fmt.Errorf("remove delegated cgroup %s: %w", p, err)
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			killInCgroup(s.opts.ProcRoot, pid, p)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove delegated cgroup %s: %d processes left: %w", p, len(pids), ctx.Err())
		case <-time.After(delay):
		}
	}
	if err := cgroup.RemoveTree(hier, p); err != nil {
		return fmt.Errorf("remove delegated cgroup: %w", err)
	}
	return nil
}

// killInCgroup SIGKILLs pid through a pidfd, once the process the pidfd
// holds is seen to be in the cgroup tree p: a PID reused meanwhile is
// never signalled.
func killInCgroup(procRoot string, pid int, p string) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone
	}
	defer unix.Close(fd)
	cgroups, err := procfs.ReadCgroups(procRoot, pid)
	if err != nil || !inCgroupTree(cgroups, p) {
		return
	}
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) // gone meanwhile: the caller looks again
}

// setLimits changes a live task's limits: on its cgroup for a delegated
// task (the task's own cgroup below it has none), through libcontainer
// otherwise.
func (s *Tasks) setLimits(rec *Record, c Container, cfg configs.Config) error {
	if delegated(rec.Annotations) && path.IsAbs(rec.CgroupPath) {
		return cgroup.SetLimits(rec.CgroupPath, cfg.Cgroups.Resources)
	}
	return c.Set(cfg)
}

// inCgroupTree says whether a process's cgroups (procfs.ReadCgroups) put
// it at or below the cgroup p in some hierarchy.
func inCgroupTree(cgroups map[string]string, p string) bool {
	for _, c := range cgroups {
		if c == p || strings.HasPrefix(c, p+"/") {
			return true
		}
	}
	return false
}
