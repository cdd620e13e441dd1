package taskspec

import (
	"errors"
	"strings"
	"testing"

	"github.com/lf-edge/moor/devicemodel"
)

// TestBuildLimits: the largest sizes give an exact, positive memory limit
// and CPU quota; a VM past them that skipped Parse is refused by Build,
// naming the field, instead of wrapping.
func TestBuildLimits(t *testing.T) {
	o := Options{Moor: "/moor", RunDir: "/b/vm"}
	vm := &devicemodel.VM{Name: "big", Hypervisor: devicemodel.TCG, MemoryMiB: devicemodel.MaxMemMiB, VCPUs: devicemodel.MaxVCPUs}
	s, _, err := Build(vm, o)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	ram := int64(devicemodel.MaxMemMiB) << 20
	// RAM + 370 MiB + 2.5 % of RAM + 3 MiB per vCPU.
	if want := ram + 370<<20 + ram/40 + devicemodel.MaxVCPUs*3<<20; *r.Memory.Limit != want {
		t.Errorf("memory limit %d, want %d", *r.Memory.Limit, want)
	}
	if *r.CPU.Quota != devicemodel.MaxVCPUs*100000 || *r.CPU.Period != 100000 {
		t.Errorf("cpu quota %d per %d µs, want %d per 100000", *r.CPU.Quota, *r.CPU.Period, devicemodel.MaxVCPUs*100000)
	}
	vm.VMMMaxMemMiB = devicemodel.MaxMemMiB
	if s, _, err = Build(vm, o); err != nil || *s.Linux.Resources.Memory.Limit != 2*ram {
		t.Errorf("vmmMaxMemMiB at its bound: %v, want a limit of %d", err, 2*ram)
	}

	for field, bad := range map[string]devicemodel.VM{
		"memoryMiB":    {MemoryMiB: 1 << 44},
		"vcpus":        {MemoryMiB: 64, VCPUs: 1 << 40},
		"vmmMaxMemMiB": {MemoryMiB: 64, VCPUs: 1, VMMMaxMemMiB: 1 << 44},
	} {
		bad.Name, bad.Hypervisor = "big", devicemodel.TCG
		if _, _, err := Build(&bad, o); !errors.Is(err, devicemodel.ErrInvalidVM) || !strings.Contains(err.Error(), field) {
			t.Errorf("Build(%+v) = %v, want an ErrInvalidVM naming %s", bad, err, field)
		}
	}
}
