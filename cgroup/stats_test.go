package cgroup

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/types"
)

func TestRuncStats(t *testing.T) {
	psi := &cgroups.PSIStats{Some: cgroups.PSIData{Avg10: 1.5, Total: 7}}
	in := &cgroups.Stats{
		CpuStats: cgroups.CpuStats{
			CpuUsage: cgroups.CpuUsage{
				TotalUsage: 300, PercpuUsage: []uint64{100, 200},
				PercpuUsageInKernelmode: []uint64{10, 20}, PercpuUsageInUsermode: []uint64{90, 180},
				UsageInKernelmode: 30, UsageInUsermode: 270,
			},
			ThrottlingData: cgroups.ThrottlingData{Periods: 5, ThrottledPeriods: 2, ThrottledTime: 99},
			PSI:            psi,
		},
		CPUSetStats: cgroups.CPUSetStats{CPUs: []uint16{0, 1}, Mems: []uint16{0}, SchedLoadBalance: 1},
		MemoryStats: cgroups.MemoryStats{
			Cache:          4096,
			Usage:          cgroups.MemoryData{Usage: 1 << 20, MaxUsage: 2 << 20, Failcnt: 3, Limit: 16 << 20},
			SwapUsage:      cgroups.MemoryData{Usage: 1 << 20, Limit: 32 << 20},
			KernelUsage:    cgroups.MemoryData{Usage: 8192},
			KernelTCPUsage: cgroups.MemoryData{Limit: 9},
			Stats:          map[string]uint64{"rss": 12288},
			PSI:            psi,
		},
		PidsStats: cgroups.PidsStats{Current: 2, Limit: 100},
		BlkioStats: cgroups.BlkioStats{
			IoServiceBytesRecursive: []cgroups.BlkioStatEntry{{Major: 8, Minor: 0, Op: "Read", Value: 512}},
			SectorsRecursive:        []cgroups.BlkioStatEntry{{Major: 8, Op: "", Value: 1}},
		},
		HugetlbStats: map[string]cgroups.HugetlbStats{"2MB": {Usage: 2 << 20, MaxUsage: 4 << 20, Failcnt: 1}},
	}
	want := &types.Stats{
		CPU: types.Cpu{
			Usage: types.CpuUsage{
				Total: 300, Percpu: []uint64{100, 200}, PercpuKernel: []uint64{10, 20},
				PercpuUser: []uint64{90, 180}, Kernel: 30, User: 270,
			},
			Throttling: types.Throttling{Periods: 5, ThrottledPeriods: 2, ThrottledTime: 99},
			PSI:        psi,
		},
		CPUSet: types.CPUSet{CPUs: []uint16{0, 1}, Mems: []uint16{0}, SchedLoadBalance: 1},
		Memory: types.Memory{
			Cache:     4096,
			Usage:     types.MemoryEntry{Usage: 1 << 20, Max: 2 << 20, Failcnt: 3, Limit: 16 << 20},
			Swap:      types.MemoryEntry{Usage: 1 << 20, Limit: 32 << 20},
			Kernel:    types.MemoryEntry{Usage: 8192},
			KernelTCP: types.MemoryEntry{Limit: 9},
			Raw:       map[string]uint64{"rss": 12288},
			PSI:       psi,
		},
		Pids: types.Pids{Current: 2, Limit: 100},
		Blkio: types.Blkio{
			IoServiceBytesRecursive: []types.BlkioEntry{{Major: 8, Minor: 0, Op: "Read", Value: 512}},
			IoServicedRecursive:     []types.BlkioEntry{},
			IoQueuedRecursive:       []types.BlkioEntry{},
			IoServiceTimeRecursive:  []types.BlkioEntry{},
			IoWaitTimeRecursive:     []types.BlkioEntry{},
			IoMergedRecursive:       []types.BlkioEntry{},
			IoTimeRecursive:         []types.BlkioEntry{},
			SectorsRecursive:        []types.BlkioEntry{{Major: 8, Value: 1}},
		},
		Hugetlb: map[string]types.Hugetlb{"2MB": {Usage: 2 << 20, Max: 4 << 20, Failcnt: 1}},
	}
	got := RuncStats(in)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RuncStats:\n got %+v\nwant %+v", got, want)
	}
}

// TestRuncStatsJSON checks the wire names runc's readers (containerd's runc
// client among them) decode.
func TestRuncStatsJSON(t *testing.T) {
	in := &cgroups.Stats{
		CpuStats:    cgroups.CpuStats{CpuUsage: cgroups.CpuUsage{TotalUsage: 300, UsageInKernelmode: 30}},
		MemoryStats: cgroups.MemoryStats{Usage: cgroups.MemoryData{Usage: 1 << 20, Limit: 16 << 20}},
		PidsStats:   cgroups.PidsStats{Current: 2},
		BlkioStats:  cgroups.BlkioStats{IoServiceBytesRecursive: []cgroups.BlkioStatEntry{{Major: 8, Op: "Read", Value: 512}}},
	}
	raw, err := json.Marshal(types.Event{Type: "stats", ID: "t1", Data: RuncStats(in)})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			CPU struct {
				Usage struct {
					Total  uint64 `json:"total"`
					Kernel uint64 `json:"kernel"`
				} `json:"usage"`
			} `json:"cpu"`
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
			Blkio struct {
				Bytes []types.BlkioEntry `json:"ioServiceBytesRecursive"`
			} `json:"blkio"`
			Hugetlb map[string]any `json:"hugetlb"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	d := got.Data
	if got.Type != "stats" || got.ID != "t1" || d.CPU.Usage.Total != 300 || d.CPU.Usage.Kernel != 30 ||
		d.Memory.Usage.Usage != 1<<20 || d.Memory.Usage.Limit != 16<<20 || d.Pids.Current != 2 ||
		len(d.Blkio.Bytes) != 1 || d.Blkio.Bytes[0].Value != 512 || d.Hugetlb == nil {
		t.Fatalf("stats event JSON %s decodes to %+v", raw, got)
	}
}

func TestRuncStatsNil(t *testing.T) {
	if got := RuncStats(nil); got != nil {
		t.Fatalf("RuncStats(nil) = %+v, want nil", got)
	}
}
