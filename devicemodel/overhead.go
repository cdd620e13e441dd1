package devicemodel

// EVE's estimate of what a device model costs beside the guest's RAM
// (pkg/pillar/hypervisor/vmm_overhead.go), in bytes.
const (
	undefinedOverhead = 350 << 20 // qemu's own allocations
	binaryOverhead    = 20 << 20  // binaries and libraries
	perCPUOverhead    = 3 << 20   // per vCPU
)

// Overhead is the anchor tax of the VM in bytes: VMMMaxMemMiB when set,
// else EVE's estimate 350 MiB + 20 MiB + 2.5 % of RAM + 3 MiB per vCPU.
// The anchor's own memory is inside the 20 MiB of binaries. The sizes
// must pass CheckSizes: within its bounds nothing here overflows.
func Overhead(vm *VM) int64 {
	if vm.VMMMaxMemMiB > 0 {
		return vm.VMMMaxMemMiB << 20
	}
	ram := vm.MemoryMiB << 20
	return undefinedOverhead + binaryOverhead + ram*25/1000 + int64(vm.VCPUs)*perCPUOverhead
}

// MemoryLimit is the task's cgroup memory limit: the guest's RAM plus the
// anchor tax (at most about 2^53 bytes for sizes CheckSizes accepts).
func MemoryLimit(vm *VM) int64 {
	return vm.MemoryMiB<<20 + Overhead(vm)
}
