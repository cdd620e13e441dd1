package vmbundle

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/vmbundle/taskspec"
)

// WriteContainer writes the bundle of a VM of mode nohyper: EVE runs such
// an app as a plain container task, on bare metal. Dir/config.json is the
// app's spec with absolute paths (root and bind sources, from the app's
// bundle), the VM's memory as its memory limit, one CPU period per vCPU
// as its CPU quota, the VM's cpus as its cpuset, and Options.CgroupsPath.
func WriteContainer(vm *devicemodel.VM, o Options) error {
	if vm.Mode != devicemodel.ModeNoHyper || o.App == "" {
		return fmt.Errorf("write container bundle: needs mode nohyper and an app")
	}
	bundle, err := filepath.Abs(o.Dir)
	if err != nil {
		return fmt.Errorf("write container bundle: %w", err)
	}
	cfgPath := filepath.Join(bundle, SpecFile)
	if _, err := os.Stat(cfgPath); err == nil {
		return fmt.Errorf("write container bundle: %s exists already", cfgPath)
	}
	appDir, err := filepath.Abs(o.App)
	if err != nil {
		return fmt.Errorf("write container bundle: %w", err)
	}
	spec, err := lifecycle.LoadSpec(appDir)
	if err != nil {
		return fmt.Errorf("write container bundle: %w", err)
	}
	if err := vm.CheckSizes(); err != nil {
		return fmt.Errorf("write container bundle: %w", err)
	}
	ContainerSpec(spec, appDir, vm, o.CgroupsPath)
	if err := lifecycle.RequireMinimumSpec(spec); err != nil {
		return err
	}
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return fmt.Errorf("write container bundle: %w", err)
	}
	return writeJSON(cfgPath, spec)
}

// ContainerSpec makes an app's spec, loaded from appDir, the spec of the
// container task of a nohyper VM (see WriteContainer).
func ContainerSpec(s *specs.Spec, appDir string, vm *devicemodel.VM, cgroupsPath string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(appDir, p)
	}
	if s.Root != nil {
		s.Root.Path = abs(s.Root.Path)
	}
	for i, m := range s.Mounts {
		if taskspec.IsBind(m) {
			s.Mounts[i].Source = abs(m.Source)
		}
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	limit := vm.MemoryMiB << 20
	quota, period := int64(100000*vm.VCPUs), uint64(100000)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period, Cpus: vm.CPUs}
	if cgroupsPath != "" {
		s.Linux.CgroupsPath = cgroupsPath
	}
}
