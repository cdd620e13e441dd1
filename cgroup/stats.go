package cgroup

import (
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/types"
)

// RuncStats converts cgroup statistics, as a cgroup manager reads them,
// into the stats of `runc events` (the "data" of a "stats" event), field
// for field as runc's own conversion does. Intel RDT and network interface
// statistics are not cgroup statistics and stay empty. A nil s gives nil.
func RuncStats(s *cgroups.Stats) *types.Stats {
	if s == nil {
		return nil
	}
	var out types.Stats
	out.Pids.Current = s.PidsStats.Current
	out.Pids.Limit = s.PidsStats.Limit

	cpu := s.CpuStats
	out.CPU.Usage = types.CpuUsage{
		Total:        cpu.CpuUsage.TotalUsage,
		Percpu:       cpu.CpuUsage.PercpuUsage,
		PercpuKernel: cpu.CpuUsage.PercpuUsageInKernelmode,
		PercpuUser:   cpu.CpuUsage.PercpuUsageInUsermode,
		Kernel:       cpu.CpuUsage.UsageInKernelmode,
		User:         cpu.CpuUsage.UsageInUsermode,
	}
	out.CPU.Throttling = types.Throttling{
		Periods:          cpu.ThrottlingData.Periods,
		ThrottledPeriods: cpu.ThrottlingData.ThrottledPeriods,
		ThrottledTime:    cpu.ThrottlingData.ThrottledTime,
	}
	out.CPU.PSI = cpu.PSI
	out.CPUSet = types.CPUSet(s.CPUSetStats)

	mem := s.MemoryStats
	out.Memory = types.Memory{
		Cache:     mem.Cache,
		Usage:     memoryEntry(mem.Usage),
		Swap:      memoryEntry(mem.SwapUsage),
		Kernel:    memoryEntry(mem.KernelUsage),
		KernelTCP: memoryEntry(mem.KernelTCPUsage),
		Raw:       mem.Stats,
		PSI:       mem.PSI,
	}

	io := s.BlkioStats
	out.Blkio = types.Blkio{
		IoServiceBytesRecursive: blkioEntries(io.IoServiceBytesRecursive),
		IoServicedRecursive:     blkioEntries(io.IoServicedRecursive),
		IoQueuedRecursive:       blkioEntries(io.IoQueuedRecursive),
		IoServiceTimeRecursive:  blkioEntries(io.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     blkioEntries(io.IoWaitTimeRecursive),
		IoMergedRecursive:       blkioEntries(io.IoMergedRecursive),
		IoTimeRecursive:         blkioEntries(io.IoTimeRecursive),
		SectorsRecursive:        blkioEntries(io.SectorsRecursive),
		PSI:                     io.PSI,
	}

	out.Hugetlb = make(map[string]types.Hugetlb, len(s.HugetlbStats))
	for size, h := range s.HugetlbStats {
		out.Hugetlb[size] = types.Hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
	}
	return &out
}

func memoryEntry(d cgroups.MemoryData) types.MemoryEntry {
	return types.MemoryEntry{Limit: d.Limit, Usage: d.Usage, Max: d.MaxUsage, Failcnt: d.Failcnt}
}

func blkioEntries(in []cgroups.BlkioStatEntry) []types.BlkioEntry {
	out := make([]types.BlkioEntry, 0, len(in))
	for _, e := range in {
		out = append(out, types.BlkioEntry(e))
	}
	return out
}
