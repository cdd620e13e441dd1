package cpulist

import (
	"fmt"
	"strconv"
	"strings"
)

// maxCPU bounds a CPU or memory-node number in a list.
const maxCPU = 1 << 16

// Parse reads the kernel's list format ("0-3,5,7-8", as in
// cpuset.cpus) and returns the CPUs it names, in order.
func Parse(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil {
				return nil, fmt.Errorf("%q is not a number", hi)
			}
			if b < a {
				return nil, fmt.Errorf("range %s is backwards", part)
			}
		}
		if b >= maxCPU {
			return nil, fmt.Errorf("%d is past the last CPU", b)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, int(c))
		}
	}
	return cpus, nil
}
