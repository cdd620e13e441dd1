package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/cpulist"
)

// ErrInvalidSpec is returned for a spec that misses or gets wrong a field
// moor needs; the message names the field.
var ErrInvalidSpec = errors.New("invalid spec")

func specErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
}

// MinimumSpecAnnotation, set to "true" in a spec, asks that the task meet
// the minimum viable spec whatever the caller's options say.
const MinimumSpecAnnotation = "moor.require-minimum-spec"

// ValidateSpec checks what every task needs, as runc does (root,
// process.args, a linux section) and the values moor would otherwise pass
// to the kernel unchecked or that libcontainer would refuse only after
// something was made: resources that are set, capability and rlimit names,
// ociVersion. Resources may be absent. Properties it does not know are
// left alone.
func ValidateSpec(s *specs.Spec) error {
	if s == nil {
		return specErr("spec", "is empty")
	}
	if err := validateVersion(s.Version); err != nil {
		return err
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
	if err := validateProcessNames(s.Process); err != nil {
		return err
	}
	for _, kv := range s.Process.Env {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			return specErr("process.env", "%q: not an environment variable, want NAME=value", kv)
		}
	}
	if err := validateHooks(s.Hooks); err != nil {
		return err
	}
	if name, ok := s.Annotations[StopSignalAnnotation]; ok {
		if _, err := ParseSignal(name); err != nil {
			return specErr("annotations."+StopSignalAnnotation, "%q: %v", name, err)
		}
	}
	if s.Linux == nil {
		return specErr("linux", "must be set")
	}
	if r := s.Linux.Resources; r != nil {
		if err := validateMemory(r.Memory); err != nil {
			return err
		}
		if err := validateCPU(r.CPU); err != nil {
			return err
		}
	}
	return nil
}

// RequireMinimumSpec checks the minimum viable spec of a user-defined task
// (the rule of EVE's task manager): ValidateSpec, and a memory limit and a
// CPU share, quota or set.
func RequireMinimumSpec(s *specs.Spec) error {
	if err := ValidateSpec(s); err != nil {
		return err
	}
	r := s.Linux.Resources
	if r == nil {
		return specErr("linux.resources", "must be set (memory and cpu)")
	}
	if r.Memory == nil {
		return specErr("linux.resources.memory", "must be set")
	}
	if r.Memory.Limit == nil || *r.Memory.Limit <= 0 {
		return specErr("linux.resources.memory.limit", "must be a positive number of bytes")
	}
	if c := r.CPU; c == nil || (deref(c.Shares) == 0 && deref(c.Quota) <= 0 && c.Cpus == "") {
		return specErr("linux.resources.cpu", "must set shares, quota or cpus (0 and -1 set no limit)")
	}
	if p := r.Pids; p != nil && p.Limit != nil && *p.Limit == 0 {
		return specErr("linux.resources.pids.limit", "0 would forbid every process; use -1 for no limit")
	}
	return nil
}

// wantsMinimumSpec reports whether the spec asks for the minimum viable
// spec rule itself.
func wantsMinimumSpec(s *specs.Spec) bool {
	return s != nil && s.Annotations[MinimumSpecAnnotation] == "true"
}

// validateVersion accepts an ociVersion of major version 1 (or none).
func validateVersion(v string) error {
	if v == "" {
		return nil
	}
	major, rest, _ := strings.Cut(v, ".")
	if major != "1" || rest == "" {
		return specErr("ociVersion", "%q: unsupported, want 1.x.y", v)
	}
	return nil
}

// validateProcessNames checks the capability and rlimit names of a
// process: runc refuses an unknown rlimit only once the task's namespaces
// exist, and drops an unknown capability with a warning.
func validateProcessNames(p *specs.Process) error {
	if c := p.Capabilities; c != nil {
		known := knownCapabilities()
		sets := map[string][]string{"bounding": c.Bounding, "effective": c.Effective,
			"inheritable": c.Inheritable, "permitted": c.Permitted, "ambient": c.Ambient}
		for set, caps := range sets {
			for _, name := range caps {
				if !slices.Contains(known, name) {
					return specErr("process.capabilities."+set, "%q: unknown capability", name)
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range p.Rlimits {
		if !slices.Contains(rlimitNames, r.Type) {
			return specErr("process.rlimits", "%q: unknown rlimit", r.Type)
		}
		if seen[r.Type] {
			return specErr("process.rlimits", "%q: given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return specErr("process.rlimits", "%s: soft limit %d above hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	return nil
}

// validateHooks checks that every hook names its program by an absolute
// path, as the runtime spec wants: it runs outside the task's root.
func validateHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	lists := []struct {
		name  string
		hooks []specs.Hook
	}{
		//lint:ignore SA1019 prestart is deprecated in the spec, still run (containerd and podman send it)
		{"prestart", h.Prestart}, {"createRuntime", h.CreateRuntime}, {"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer}, {"poststart", h.Poststart}, {"poststop", h.Poststop},
	}
	for _, l := range lists {
		for i, hook := range l.hooks {
			if !path.IsAbs(hook.Path) {
				return specErr(fmt.Sprintf("hooks.%s[%d].path", l.name, i), "%q: want an absolute path", hook.Path)
			}
			if hook.Timeout != nil && *hook.Timeout <= 0 {
				return specErr(fmt.Sprintf("hooks.%s[%d].timeout", l.name, i), "%d: want a positive number of seconds", *hook.Timeout)
			}
		}
	}
	return nil
}

// knownCapabilities is libcontainer's list of capability names, made once.
var knownCapabilities = sync.OnceValue(capabilities.KnownCapabilities)

// rlimitNames are the POSIX rlimits Linux knows.
var rlimitNames = []string{
	"RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
	"RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
	"RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO",
	"RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
}

// validateMemory checks a memory section's values: a limit of 0 or none is
// no limit, -1 is unlimited.
func validateMemory(m *specs.LinuxMemory) error {
	const field = "linux.resources.memory"
	if m == nil || m.Limit == nil {
		return nil
	}
	limit := *m.Limit
	if limit < -1 {
		return specErr(field+".limit", "%d: must be a positive number of bytes (or -1, unlimited)", limit)
	}
	if limit <= 0 {
		return nil
	}
	if m.Swap != nil && *m.Swap != -1 && *m.Swap != 0 && *m.Swap < limit {
		return specErr(field+".swap", "%d: must be -1 or at least the limit (%d): it counts memory and swap together", *m.Swap, limit)
	}
	if m.Reservation != nil && *m.Reservation > limit {
		return specErr(field+".reservation", "%d: above the limit (%d)", *m.Reservation, limit)
	}
	return nil
}

// maxCPUQuota is the largest CFS quota the kernel takes (µs).
const maxCPUQuota = 1<<44 - 1

// validateCPU checks a CPU section's values; 0 means unset, as in runc.
func validateCPU(c *specs.LinuxCPU) error {
	const field = "linux.resources.cpu"
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 && (*c.Shares < 2 || *c.Shares > 262144) {
		return specErr(field+".shares", "%d: must be 2 to 262144", *c.Shares)
	}
	if c.Period != nil && *c.Period != 0 && (*c.Period < 1000 || *c.Period > 1000000) {
		return specErr(field+".period", "%d: must be 1000 to 1000000 microseconds", *c.Period)
	}
	if c.Quota != nil && *c.Quota != -1 && *c.Quota != 0 && (*c.Quota < 1000 || *c.Quota > maxCPUQuota) {
		return specErr(field+".quota", "%d: must be -1 or 1000 to %d microseconds", *c.Quota, maxCPUQuota)
	}
	if c.Cpus != "" {
		if _, err := cpulist.Parse(c.Cpus); err != nil {
			return specErr(field+".cpus", "%q: %v", c.Cpus, err)
		}
	}
	if c.Mems != "" {
		if _, err := cpulist.Parse(c.Mems); err != nil {
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
