package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
)

// cgroupParent holds the cgroup of every task the benchmark makes.
const cgroupParent = "/moor-bench"

// buildRootfs makes a minimal busybox root filesystem from Debian's
// busybox-static, the one root every task of every runtime uses.
func buildRootfs(root string) error {
	src, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("find busybox (apt-get install busybox-static): %w", err)
	}
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("make rootfs: %w", err)
		}
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read busybox: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		return fmt.Errorf("copy busybox: %w", err)
	}
	list, err := exec.Command(src, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			return fmt.Errorf("link applet %s: %w", applet, err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// taskSpec is the spec of every benchmark task: runc's example spec (its
// namespaces: pid, net, ipc, uts, mount; its mounts, masks and
// capabilities) on the read-only busybox root, with a 64 MiB memory limit,
// 512 CPU shares and the cgroup /moor-bench/<name>; spec version 1.0.2.
func taskSpec(rootfs, name string, args ...string) *specs.Spec {
	s := specconv.Example()
	s.Version = "1.0.2" // crun 1.8 refuses newer spec versions; nothing here needs one
	s.Root = &specs.Root{Path: rootfs, Readonly: true}
	s.Process.Terminal = false
	s.Process.Args = args
	s.Hostname = "bench"
	limit, shares := int64(64<<20), uint64(512)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	s.Linux.CgroupsPath = cgroupParent + "/" + name
	return s
}

// writeBundle writes a bundle directory holding spec as config.json.
func writeBundle(dir string, spec *specs.Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make bundle: %w", err)
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// makeCgroupParent creates /moor-bench in every hierarchy, so that no
// runtime pays for making (or removing) it, and gives its cpuset the root's
// CPUs and memory nodes.
func makeCgroupParent() error {
	hier, err := cgroup.Hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hier {
		dir := filepath.Join(h, cgroupParent)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("make cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(h, f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
				return fmt.Errorf("set %s of %s: %w", f, dir, err)
			}
		}
	}
	return nil
}

// removeCgroupParent removes /moor-bench from every hierarchy and returns
// the cgroups a runtime left behind in it (removed too, once empty).
func removeCgroupParent() (leaks []string, err error) {
	hier, err := cgroup.Hierarchies()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, h := range hier {
		dir := filepath.Join(h, cgroupParent)
		kids, _ := os.ReadDir(dir)
		for _, k := range kids {
			if k.IsDir() {
				leaks = append(leaks, filepath.Join(dir, k.Name()))
				_ = unix.Rmdir(filepath.Join(dir, k.Name()))
			}
		}
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return leaks, errors.Join(errs...)
}

// leaveHybrid unmounts the unified cgroup2 tree in this (private) mount
// namespace, so the cgroup root holds only the v1 hierarchies: crun 1.8
// refuses a hybrid host. It reports whether there was one.
func leaveHybrid() (bool, error) {
	const unified = "/sys/fs/cgroup/unified"
	var st unix.Statfs_t
	if err := unix.Statfs(unified, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return false, nil
	}
	if err := unix.Unmount(unified, unix.MNT_DETACH); err != nil {
		return true, fmt.Errorf("unmount %s in the private mount namespace: %w", unified, err)
	}
	return true, nil
}
