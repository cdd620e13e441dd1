package devicemodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
)

// FuzzParse: Parse never panics and refuses with ErrInvalidVM; what it
// accepts validates again, writes and reads back the same, has its
// defaults filled and sizes within CheckSizes' bounds, and gives an exact
// memory limit (in big integers) above the guest's RAM.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, kvm bool) {
		vm, err := Parse(bytes.NewReader(data), fixedProbe(kvm))
		if err != nil {
			if !errors.Is(err, ErrInvalidVM) {
				t.Fatalf("Parse: %v: not an ErrInvalidVM", err)
			}
			return
		}
		if err := vm.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		out, err := json.Marshal(vm)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(bytes.NewReader(out), fixedProbe(!kvm))
		if err != nil {
			t.Fatalf("Parse(%s), written back: %v", out, err)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("not the same once written and read back:\n%s\n%s", out, out2)
		}
		switch {
		case vm.Mode == "" || vm.VCPUs == 0 || (vm.Mode != ModeNoHyper && vm.Hypervisor == ""):
			t.Fatalf("defaults not filled: %+v", vm)
		case vm.MemoryMiB < 1 || vm.MemoryMiB > MaxMemMiB || vm.VCPUs > MaxVCPUs || vm.VMMMaxMemMiB < 0 || vm.VMMMaxMemMiB > MaxMemMiB:
			t.Fatalf("sizes out of bounds: %+v", vm)
		}
		limit, exact := MemoryLimit(vm), exactLimit(vm)
		if big.NewInt(limit).Cmp(exact) != 0 || limit <= vm.MemoryMiB<<20 {
			t.Fatalf("MemoryLimit = %d, want %s, above the RAM", limit, exact)
		}
	})
}
