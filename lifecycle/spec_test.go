package lifecycle

import (
	"errors"
	"os"
	"path/filepath"
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
	neg, small, big := int64(-5), int64(1<<20), int64(1<<40)
	period, low := uint64(10), uint64(1)
	cases := map[string]func(*specs.Spec){
		"ociVersion":   func(s *specs.Spec) { s.Version = "2.0.0" },
		"root.path":    func(s *specs.Spec) { s.Root.Path = "" },
		"process.args": func(s *specs.Spec) { s.Process.Args = []string{""} },
		"process.cwd":  func(s *specs.Spec) { s.Process.Cwd = "relative" },
		"process.capabilities.bounding": func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_TELEPORT"}}
		},
		"process.rlimits":                    func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_TEA", Hard: 1, Soft: 1}} },
		"linux":                              func(s *specs.Spec) { s.Linux = nil },
		"linux.resources.memory.limit":       func(s *specs.Spec) { s.Linux.Resources.Memory.Limit = &neg },
		"linux.resources.memory.swap":        func(s *specs.Spec) { s.Linux.Resources.Memory.Swap = &small },
		"linux.resources.cpu.shares":         func(s *specs.Spec) { s.Linux.Resources.CPU.Shares = &low },
		"linux.resources.cpu.period":         func(s *specs.Spec) { s.Linux.Resources.CPU.Period = &period },
		"linux.resources.cpu.mems":           func(s *specs.Spec) { s.Linux.Resources.CPU.Mems = "x" },
		"linux.resources.memory.reservation": func(s *specs.Spec) { s.Linux.Resources.Memory.Reservation = &big },
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
	unlimited := int64(-1)
	s.Linux.Resources.Memory.Swap = &unlimited // -1: unlimited swap is fine
	if err := ValidateSpec(s); err != nil {
		t.Errorf("swap -1 refused: %v", err)
	}
}

// TestSpecRules: the OCI path (ValidateSpec) accepts what runc accepts,
// a spec without resources among them; EVE's user-app path
// (RequireMinimumSpec) refuses it, naming the field.
func TestSpecRules(t *testing.T) {
	zero := int64(0)
	cases := map[string]func(*specs.Spec){
		"linux.resources":              func(s *specs.Spec) { s.Linux.Resources = nil },
		"linux.resources.memory":       func(s *specs.Spec) { s.Linux.Resources.Memory = nil },
		"linux.resources.memory.limit": func(s *specs.Spec) { s.Linux.Resources.Memory.Limit = &zero },
		"linux.resources.cpu":          func(s *specs.Spec) { s.Linux.Resources.CPU = nil },
		"linux.resources.pids.limit":   func(s *specs.Spec) { s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &zero} },
	}
	for field, mutate := range cases {
		s := validSpec()
		mutate(s)
		if err := ValidateSpec(s); err != nil {
			t.Errorf("%s: the OCI path refused it: %v", field, err)
		}
		err := RequireMinimumSpec(s)
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), field+":") {
			t.Errorf("%s: minimum spec got %v, want ErrInvalidSpec naming it", field, err)
		}
	}
	if err := RequireMinimumSpec(validSpec()); err != nil {
		t.Errorf("minimum spec refused a valid spec: %v", err)
	}
}

// TestCreateRuleChoice: a library Tasks holds creates to the minimum
// viable spec unless AnySpec; the annotation asks for it either way.
func TestCreateRuleChoice(t *testing.T) {
	bare := func(annotated bool) *specs.Spec {
		s := validSpec()
		s.Linux.Resources = nil
		if annotated {
			s.Annotations = map[string]string{MinimumSpecAnnotation: "true"}
		}
		return s
	}
	for _, c := range []struct {
		anySpec, annotated, refused bool
	}{
		{false, false, true},
		{true, false, false},
		{true, true, true},
	} {
		sup, err := New(Options{Root: t.TempDir(), AnySpec: c.anySpec})
		if err != nil {
			t.Fatal(err)
		}
		bundle := t.TempDir()
		if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, _, err = sup.checkCreate(CreateOptions{ID: "x", Bundle: bundle, Spec: bare(c.annotated)})
		if refused := errors.Is(err, ErrInvalidSpec); refused != c.refused {
			t.Errorf("AnySpec %v, annotated %v: err %v, want refused %v", c.anySpec, c.annotated, err, c.refused)
		}
	}
}
