package devicemodel

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

// The boundaries every size from JSON is tested at, in MiB.
var sizeBoundaries = []struct {
	mib string
	ok  bool // as memoryMiB and vmmMaxMemMiB
}{
	{"-1", false},
	{"0", false},
	{"1", true},
	{"4294967296", true},           // 2^32: MaxMemMiB
	{"4294967297", false},          // 2^32+1
	{"8796093022208", false},       // 2^43: its bytes overflow an int64
	{"17592186044416", false},      // 2^44
	{"17592186044417", false},      // 2^44+1
	{"4611686018427387904", false}, // 2^62
	{"9223372036854775807", false}, // 2^63-1
}

func TestMemoryBoundaries(t *testing.T) {
	for _, b := range sizeBoundaries {
		desc := fmt.Sprintf(`{"name":"a","memoryMiB":%s}`, b.mib)
		vm, err := Parse(strings.NewReader(desc), fixedProbe(false))
		checkBoundary(t, desc, "memoryMiB", b.ok, err)
		if err == nil {
			checkLimit(t, vm)
		}
	}
}

func TestTaxBoundaries(t *testing.T) {
	for _, b := range sizeBoundaries {
		desc := fmt.Sprintf(`{"name":"a","memoryMiB":4294967296,"vcpus":255,"vmmMaxMemMiB":%s}`, b.mib)
		ok := b.ok || b.mib == "0" // 0 is EVE's estimate
		vm, err := Parse(strings.NewReader(desc), fixedProbe(false))
		checkBoundary(t, desc, "vmmMaxMemMiB", ok, err)
		if err == nil {
			checkLimit(t, vm)
		}
	}
}

func TestVCPUBoundaries(t *testing.T) {
	for vcpus, ok := range map[string]bool{
		"-1": false, "0": true /* the default, 1 */, "1": true, "255": true, "256": false,
		"4294967296": false, "9223372036854775807": false,
	} {
		desc := fmt.Sprintf(`{"name":"a","memoryMiB":128,"vcpus":%s}`, vcpus)
		vm, err := Parse(strings.NewReader(desc), fixedProbe(false))
		checkBoundary(t, desc, "vcpus", ok, err)
		if err == nil {
			checkLimit(t, vm)
		}
	}
	// Past an int64, the JSON decoder refuses it and names the field.
	_, err := Parse(strings.NewReader(`{"name":"a","memoryMiB":128,"vcpus":9223372036854775808}`), fixedProbe(false))
	checkBoundary(t, "vcpus 2^63", "vcpus", false, err)
}

func checkBoundary(t *testing.T, desc, field string, ok bool, err error) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Errorf("Parse(%s) = %v, want it accepted", desc, err)
	case !ok && (!errors.Is(err, ErrInvalidVM) || !strings.Contains(err.Error(), field)):
		t.Errorf("Parse(%s) = %v, want an ErrInvalidVM naming %s", desc, err, field)
	}
}

// checkLimit compares MemoryLimit with the same sum in exact arithmetic.
func checkLimit(t *testing.T, vm *VM) {
	t.Helper()
	if got, want := MemoryLimit(vm), exactLimit(vm); big.NewInt(got).Cmp(want) != 0 {
		t.Errorf("MemoryLimit(%+v) = %d, want %s", vm, got, want)
	}
}

// exactLimit is the memory limit in big integers: RAM + (vmmMaxMemMiB, or
// 370 MiB + RAM × 25/1000 + 3 MiB per vCPU).
func exactLimit(vm *VM) *big.Int {
	mib := func(n int64) *big.Int { return new(big.Int).Lsh(big.NewInt(n), 20) }
	ram := mib(vm.MemoryMiB)
	tax := mib(vm.VMMMaxMemMiB)
	if vm.VMMMaxMemMiB == 0 {
		tax = mib(370)
		tax.Add(tax, new(big.Int).Quo(new(big.Int).Mul(ram, big.NewInt(25)), big.NewInt(1000)))
		tax.Add(tax, mib(3*int64(vm.VCPUs)))
	}
	return tax.Add(tax, ram)
}
