package supervisor

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func validSpec() *specs.Spec {
	limit, shares := int64(64<<20), uint64(512)
	return &specs.Spec{
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"},
		Linux: &specs.Linux{Resources: &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: &limit},
			CPU:    &specs.LinuxCPU{Shares: &shares},
		}},
	}
}

func TestValidateSpec(t *testing.T) {
	if err := ValidateSpec(validSpec()); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	zero, neg, small := int64(0), int64(-1), int64(1<<20)
	period := uint64(10)
	cases := map[string]func(*specs.Spec){
		"root.path":                          func(s *specs.Spec) { s.Root.Path = "" },
		"process.args":                       func(s *specs.Spec) { s.Process.Args = []string{""} },
		"process.cwd":                        func(s *specs.Spec) { s.Process.Cwd = "relative" },
		"linux.resources":                    func(s *specs.Spec) { s.Linux.Resources = nil },
		"linux.resources.memory.limit":       func(s *specs.Spec) { s.Linux.Resources.Memory.Limit = &zero },
		"linux.resources.memory.swap":        func(s *specs.Spec) { s.Linux.Resources.Memory.Swap = &small },
		"linux.resources.cpu":                func(s *specs.Spec) { s.Linux.Resources.CPU = &specs.LinuxCPU{} },
		"linux.resources.cpu.period":         func(s *specs.Spec) { s.Linux.Resources.CPU.Period = &period },
		"linux.resources.cpu.mems":           func(s *specs.Spec) { s.Linux.Resources.CPU.Mems = "x" },
		"linux.resources.pids.limit":         func(s *specs.Spec) { s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &zero} },
		"linux.resources.memory.reservation": func(s *specs.Spec) { big := int64(1 << 40); s.Linux.Resources.Memory.Reservation = &big },
	}
	for field, mutate := range cases {
		s := validSpec()
		mutate(s)
		err := ValidateSpec(s)
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), field+":") {
			t.Errorf("%s: got %v, want ErrInvalidSpec naming it", field, err)
		}
	}
	s := validSpec()
	s.Linux.Resources.Memory.Swap = &neg // -1: unlimited swap is fine
	if err := ValidateSpec(s); err != nil {
		t.Errorf("swap -1 refused: %v", err)
	}
}
