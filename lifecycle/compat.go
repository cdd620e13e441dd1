package lifecycle

import (
	"log/slog"
	"slices"

	"github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
)

// fitLibcontainer adjusts a config that the runtime spec allows but this
// libcontainer would refuse or fail on, where the spec says what was
// meant, as runc's CLI did before the library grew stricter:
//   - a seccomp filter that does not name statx, with no_new_privs off, is
//     loaded before libcontainer closes the task's inherited descriptors,
//     a step that asks /proc through statx; such a filter answers ENOSYS
//     and libcontainer refuses the task. statx (a read-only stat, which
//     Docker's, containerd's and podman's default profiles allow) is
//     allowed in it, with a warning.
//   - a FIFO device's major and minor numbers mean nothing (the spec does
//     not require them) and mknod does not keep them; they are zeroed.
//   - filesystem options on a bind mount are ignored by the kernel; they
//     are dropped with a warning.
//
// Every change of what the user's spec asked for is logged as a warning
// naming what changed and why.
func fitLibcontainer(cfg *configs.Config, log *slog.Logger) {
	if sc := cfg.Seccomp; sc != nil && !cfg.NoNewPrivileges && sc.DefaultAction != configs.Allow &&
		!slices.ContainsFunc(sc.Syscalls, func(s *configs.Syscall) bool { return s.Name == "statx" }) {
		log.Warn("seccomp: statx allowed, which the profile does not name and its default action does not allow: without no_new_privs libcontainer loads the filter before it closes the task's inherited descriptors, which it looks up with statx",
			"changed", "linux.seccomp.syscalls", "added", "statx")
		sc.Syscalls = append(sc.Syscalls, &configs.Syscall{Name: "statx", Action: configs.Allow})
	}
	for _, d := range cfg.Devices {
		if d.Type == config.FifoDevice {
			d.Major, d.Minor = 0, 0
		}
	}
	for _, m := range cfg.Mounts {
		if m.IsBind() && m.Data != "" {
			log.Warn("bind mount: filesystem options ignored", "destination", m.Destination, "options", m.Data)
			m.Data = ""
		}
	}
}
