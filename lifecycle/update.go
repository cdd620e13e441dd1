package lifecycle

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Update changes a live task's memory, CPU and pids limits. Only the fields
// set in r change; the result must still be a valid spec.
// The task's saved spec is updated too, so info shows what is in force.
func (s *Tasks) Update(ref string, r *specs.LinuxResources) error {
	h, err := s.open(ref, "update", locked, Created, Running, Paused)
	if err != nil {
		return err
	}
	defer h.close()
	rec := h.rec
	spec, err := s.store.LoadSpec(rec.Namespace, rec.ID)
	if err != nil {
		return fmt.Errorf("update task %s: %w", rec.ID, err)
	}
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	mergeResources(spec.Linux.Resources, r)
	if err := ValidateSpec(spec); err != nil {
		return fmt.Errorf("update task %s: %w", rec.ID, err)
	}
	c, err := h.container()
	if err != nil {
		return fmt.Errorf("update task %s: %w", rec.ID, err)
	}
	cfg := c.Config()
	res := cfg.Cgroups.Resources
	if m := spec.Linux.Resources.Memory; m != nil {
		res.Memory = deref(m.Limit)
		res.MemoryReservation = deref(m.Reservation)
		res.MemorySwap = deref(m.Swap)
	}
	if cpu := spec.Linux.Resources.CPU; cpu != nil {
		res.CpuShares = deref(cpu.Shares)
		res.CpuQuota = deref(cpu.Quota)
		res.CpuPeriod = deref(cpu.Period)
		res.CpusetCpus, res.CpusetMems = cpu.Cpus, cpu.Mems
	}
	if p := spec.Linux.Resources.Pids; p != nil && p.Limit != nil {
		res.PidsLimit = p.Limit
	}
	if err := s.setLimits(rec, c, cfg); err != nil {
		return fmt.Errorf("update task %s: %w", rec.ID, err)
	}
	if err := s.store.SaveSpec(rec.Namespace, rec.ID, spec); err != nil {
		// The limits are set: the update is done, moor's copy of the spec lags.
		s.log.Warn("update task: done, but its spec could not be saved", "id", rec.ID, "err", err)
	}
	return nil
}

// mergeResources sets in dst the memory, CPU and pids fields set in src.
func mergeResources(dst, src *specs.LinuxResources) {
	if m := src.Memory; m != nil {
		if dst.Memory == nil {
			dst.Memory = &specs.LinuxMemory{}
		}
		setIf(&dst.Memory.Limit, m.Limit)
		setIf(&dst.Memory.Reservation, m.Reservation)
		setIf(&dst.Memory.Swap, m.Swap)
	}
	if c := src.CPU; c != nil {
		if dst.CPU == nil {
			dst.CPU = &specs.LinuxCPU{}
		}
		setIf(&dst.CPU.Shares, c.Shares)
		setIf(&dst.CPU.Quota, c.Quota)
		setIf(&dst.CPU.Period, c.Period)
		if c.Cpus != "" {
			dst.CPU.Cpus = c.Cpus
		}
		if c.Mems != "" {
			dst.CPU.Mems = c.Mems
		}
	}
	if p := src.Pids; p != nil && p.Limit != nil {
		dst.Pids = &specs.LinuxPids{Limit: p.Limit}
	}
}

func setIf[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}

func deref[T int64 | uint64](p *T) T {
	if p == nil {
		return 0
	}
	return *p
}
