package rootfs

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// refused are the values every size refuses: zero, negative, and the
// boundaries of the overflows seen (2^43, 2^44 and 2^44+1 MiB, 2^62, 2^63-1).
var refused = []string{"-1", "0", "8796093022208", "17592186044416", "17592186044417", "4611686018427387904", "9223372036854775807"}

// TestAppMemoryBoundaries: memoryMiB becomes an exact, positive limit in
// bytes up to 2^43-1 MiB; zero, negative and past it are errors naming
// the field (2^43 gave -2^63, 2^62 gave 0, 2^44+1 gave 1 MiB).
func TestAppMemoryBoundaries(t *testing.T) {
	checkSizeBoundaries(t, "memoryMiB", map[string]int64{
		"1":                   1 << 20,
		"128":                 128 << 20,
		"8796093022207":       1<<63 - 1<<20, // 2^43-1: MaxMemoryMiB
		"9223372036854775808": 0,             // 2^63: the decoder refuses it
	}, func(r *specs.LinuxResources) int64 { return *r.Memory.Limit })
}

// TestAppCPUBoundaries: cpus becomes a quota of cpus × 100000 µs per
// 100000 µs up to the kernel's largest quota, 2^44-1 µs.
func TestAppCPUBoundaries(t *testing.T) {
	checkSizeBoundaries(t, "cpus", map[string]int64{
		"1":         100000,
		"175921860": 175921860 * 100000, // MaxCPUs
		"175921861": 0,
	}, func(r *specs.LinuxResources) int64 {
		if *r.CPU.Period != cpuPeriod {
			return -*r.CPU.Quota
		}
		return *r.CPU.Quota
	})
}

// checkSizeBoundaries sets field to each value: want 0 is an error naming
// the field, else what got reads from the spec's resources.
func checkSizeBoundaries(t *testing.T, field string, cases map[string]int64, got func(*specs.LinuxResources) int64) {
	t.Helper()
	for _, v := range refused {
		cases[v] = 0
	}
	for value, want := range cases {
		app := fmt.Sprintf(`{%q: %s}`, field, value)
		s, err := applyJSON(app)
		switch {
		case want == 0 && (!errors.Is(err, ErrInvalidApp) || !strings.Contains(err.Error(), field)):
			t.Errorf("%s: %v, want an error naming %s", app, err, field)
		case want != 0 && err != nil:
			t.Errorf("%s: %v", app, err)
		case want != 0 && got(s.Linux.Resources) != want:
			t.Errorf("%s: %d, want %d", app, got(s.Linux.Resources), want)
		}
	}
}

// TestAppUnset: an absent memoryMiB or cpus leaves the seed's resources
// as they are.
func TestAppUnset(t *testing.T) {
	s, err := applyJSON(`{"hostname": "x"}`)
	if err != nil {
		t.Fatal(err)
	}
	seed := template().Linux.Resources
	if r := s.Linux.Resources; *r.Memory.Limit != *seed.Memory.Limit || r.CPU.Quota != nil || *r.CPU.Shares != *seed.CPU.Shares {
		t.Errorf("resources %+v %+v, want the seed's", r.Memory, r.CPU)
	}
}

func applyJSON(app string) (*specs.Spec, error) {
	a, err := ParseApp(strings.NewReader(app))
	if err != nil {
		return nil, err
	}
	return ApplyApp(template(), a)
}
