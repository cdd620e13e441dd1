package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/cpulist"
)

// FuzzValidateSpec: on any JSON-decoded spec, ValidateSpec and
// RequireMinimumSpec never panic and never change the spec; they refuse
// with ErrInvalidSpec; what RequireMinimumSpec accepts ValidateSpec
// accepts; and an accepted spec has every field its rule promises.
func FuzzValidateSpec(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.Spec
		if json.Unmarshal(data, &s) != nil {
			return
		}
		before, err := json.Marshal(&s)
		if err != nil {
			return // NaN and such: not a spec anyone can write
		}
		errValid, errMin := ValidateSpec(&s), RequireMinimumSpec(&s)
		if after, _ := json.Marshal(&s); !bytes.Equal(before, after) {
			t.Fatalf("validation changed the spec:\n%s\n%s", before, after)
		}
		for _, err := range []error{errValid, errMin} {
			if err != nil && !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("%v: not an ErrInvalidSpec", err)
			}
		}
		if errValid != nil {
			if errMin == nil {
				t.Fatalf("RequireMinimumSpec accepted what ValidateSpec refused (%v)", errValid)
			}
			return
		}
		if msg := promisedByValidate(&s); msg != "" {
			t.Fatalf("ValidateSpec accepted %s: %s", before, msg)
		}
		if errMin == nil {
			if msg := promisedByMinimum(s.Linux.Resources); msg != "" {
				t.Fatalf("RequireMinimumSpec accepted %s: %s", before, msg)
			}
		}
	})
}

// maxCFSQuota is the kernel's largest CFS quota, 2^44-1 µs
// (max_cfs_runtime in kernel/sched/core.c).
const maxCFSQuota = 1<<44 - 1

// promisedByValidate says what of ValidateSpec's promises s breaks.
func promisedByValidate(s *specs.Spec) string {
	major, rest, _ := strings.Cut(s.Version, ".")
	p := s.Process
	switch {
	case s.Version != "" && (major != "1" || rest == ""):
		return "ociVersion " + s.Version
	case s.Root == nil || s.Root.Path == "":
		return "no root.path"
	case p == nil || len(p.Args) == 0 || p.Args[0] == "":
		return "no program"
	case p.Cwd != "" && !path.IsAbs(p.Cwd):
		return "a relative cwd"
	case s.Linux == nil:
		return "no linux section"
	}
	if msg := promisedProcessNames(p); msg != "" {
		return msg
	}
	if r := s.Linux.Resources; r != nil {
		return promisedResources(r)
	}
	return ""
}

func promisedProcessNames(p *specs.Process) string {
	if c := p.Capabilities; c != nil {
		for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			for _, name := range set {
				if !slices.Contains(capabilities.KnownCapabilities(), name) {
					return "capability " + name
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range p.Rlimits {
		if !slices.Contains(rlimitNames, r.Type) || seen[r.Type] || r.Soft > r.Hard {
			return "rlimit " + r.Type
		}
		seen[r.Type] = true
	}
	return ""
}

func promisedResources(r *specs.LinuxResources) string {
	if m := r.Memory; m != nil && m.Limit != nil {
		limit := *m.Limit
		switch {
		case limit < -1:
			return "a memory limit below -1"
		case limit > 0 && m.Swap != nil && *m.Swap != -1 && *m.Swap != 0 && *m.Swap < limit:
			return "memory+swap below the limit"
		case limit > 0 && m.Reservation != nil && *m.Reservation > limit:
			return "a reservation above the limit"
		}
	}
	c := r.CPU
	if c == nil {
		return ""
	}
	switch {
	case c.Shares != nil && *c.Shares != 0 && (*c.Shares < 2 || *c.Shares > 262144):
		return "cpu shares out of range"
	case c.Period != nil && *c.Period != 0 && (*c.Period < 1000 || *c.Period > 1000000):
		return "cpu period out of range"
	case c.Quota != nil && *c.Quota != 0 && *c.Quota != -1 && *c.Quota < 1000:
		return "cpu quota below 1000"
	case c.Quota != nil && *c.Quota > maxCFSQuota:
		return "a cpu quota the kernel refuses (EINVAL) once the cgroup is made"
	}
	for _, list := range []string{c.Cpus, c.Mems} {
		if _, err := cpulist.Parse(list); list != "" && err != nil {
			return "cpu list " + list
		}
	}
	return ""
}

// promisedByMinimum says what of the minimum viable spec r lacks: a
// positive memory limit and a CPU share, quota or set that is set (0 is
// unset, as ValidateSpec reads it), and no pids limit of 0.
func promisedByMinimum(r *specs.LinuxResources) string {
	switch {
	case r == nil || r.Memory == nil || r.Memory.Limit == nil || *r.Memory.Limit <= 0:
		return "no positive memory limit"
	case r.CPU == nil:
		return "no cpu section"
	case (r.CPU.Shares == nil || *r.CPU.Shares == 0) && (r.CPU.Quota == nil || *r.CPU.Quota <= 0) && r.CPU.Cpus == "":
		return "no cpu shares, quota or set"
	case r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit == 0:
		return "a pids limit of 0"
	}
	return ""
}
