package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/cgroup"
)

// ErrInvalidSpec is returned for a spec that misses or gets wrong a field
// moor needs; the message names the field.
var ErrInvalidSpec = errors.New("invalid spec")

func specErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
}

// ValidateSpec checks the minimum viable spec of a task (root,
// process.args, linux.resources.memory, linux.resources.cpu) and the values
// moor would otherwise pass to the kernel unchecked. Properties it does not
// know are left alone.
func ValidateSpec(s *specs.Spec) error {
	if s == nil {
		return specErr("spec", "is empty")
	}
	if s.Root == nil || s.Root.Path == "" {
		return specErr("root.path", "must be set")
	}
	if s.Process == nil {
		return specErr("process", "must be set")
	}
	if len(s.Process.Args) == 0 || s.Process.Args[0] == "" {
		return specErr("process.args", "must name a program")
	}
	if s.Process.Cwd != "" && !path.IsAbs(s.Process.Cwd) {
		return specErr("process.cwd", "%q is not absolute", s.Process.Cwd)
	}
	if s.Linux == nil {
		return specErr("linux", "must be set")
	}
	if s.Linux.Resources == nil {
		return specErr("linux.resources", "must be set (memory and cpu)")
	}
	if err := validateMemory(s.Linux.Resources.Memory); err != nil {
		return err
	}
	if err := validateCPU(s.Linux.Resources.CPU); err != nil {
		return err
	}
	if p := s.Linux.Resources.Pids; p != nil && p.Limit != nil && *p.Limit == 0 {
		return specErr("linux.resources.pids.limit", "0 would forbid every process; use -1 for no limit")
	}
	return nil
}

func validateMemory(m *specs.LinuxMemory) error {
	const field = "linux.resources.memory"
	if m == nil {
		return specErr(field, "must be set")
	}
	if m.Limit == nil {
		return specErr(field+".limit", "must be set (bytes)")
	}
	limit := *m.Limit
	if limit <= 0 {
		return specErr(field+".limit", "%d: must be a positive number of bytes", limit)
	}
	if m.Swap != nil && *m.Swap != -1 && *m.Swap < limit {
		return specErr(field+".swap", "%d: must be -1 or at least the limit (%d): it counts memory and swap together", *m.Swap, limit)
	}
	if m.Reservation != nil && *m.Reservation > limit {
		return specErr(field+".reservation", "%d: above the limit (%d)", *m.Reservation, limit)
	}
	return nil
}

func validateCPU(c *specs.LinuxCPU) error {
	const field = "linux.resources.cpu"
	if c == nil {
		return specErr(field, "must be set (shares, quota/period or cpus)")
	}
	if c.Shares == nil && c.Quota == nil && c.Cpus == "" {
		return specErr(field, "must set shares, quota or cpus")
	}
	if c.Shares != nil && (*c.Shares < 2 || *c.Shares > 262144) {
		return specErr(field+".shares", "%d: must be 2 to 262144", *c.Shares)
	}
	if c.Period != nil && (*c.Period < 1000 || *c.Period > 1000000) {
		return specErr(field+".period", "%d: must be 1000 to 1000000 microseconds", *c.Period)
	}
	if c.Quota != nil && *c.Quota != -1 && *c.Quota < 1000 {
		return specErr(field+".quota", "%d: must be -1 or at least 1000 microseconds", *c.Quota)
	}
	if c.Cpus != "" {
		if _, err := cgroup.ParseCPUList(c.Cpus); err != nil {
			return specErr(field+".cpus", "%q: %v", c.Cpus, err)
		}
	}
	if c.Mems != "" {
		if _, err := cgroup.ParseCPUList(c.Mems); err != nil {
			return specErr(field+".mems", "%q: %v", c.Mems, err)
		}
	}
	return nil
}

// LoadSpec reads a bundle's config.json. Unknown properties are accepted.
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read spec %s: %w", path, err)
	}
	return &s, nil
}
