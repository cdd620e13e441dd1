package rootfs

import (
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultSpec is the template of a seeded spec and the spec `moor spec`
// writes: runc's example spec (sh in ./rootfs, read-only, in new
// namespaces) with the minimum viable resources a moor task needs — 256
// MiB of memory, 1024 CPU shares, at most 1024 processes — and no
// terminal.
func DefaultSpec() *specs.Spec {
	s := specconv.Example()
	s.Process.Terminal = false
	s.Hostname = "moor"
	limit, shares, pids := int64(256<<20), uint64(1024), int64(1024)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	return s
}
