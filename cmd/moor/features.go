package main

import (
	"fmt"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli"
)

var featuresCommand = cli.Command{
	Name:  "features",
	Usage: "print what this build of moor supports, as OCI features JSON",
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() != 0 {
			return fmt.Errorf("features: takes no arguments")
		}
		yes, no := true, false
		f := features.Features{
			OCIVersionMin: "1.0.0",
			OCIVersionMax: specs.Version,
			Hooks:         configs.KnownHookNames(),
			MountOptions:  specconv.KnownMountOptions(),
			Annotations:   map[string]string{"org.lfedge.moor.version": version},
			Linux: &features.Linux{
				Namespaces:   specconv.KnownNamespaces(),
				Capabilities: capabilities.KnownCapabilities(),
				Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &yes, SystemdUser: &no},
				Seccomp:      &features.Seccomp{Enabled: &no},
				Apparmor:     &features.Apparmor{Enabled: &yes},
				Selinux:      &features.Selinux{Enabled: &yes},
			},
		}
		if seccomp.Enabled {
			f.Linux.Seccomp = &features.Seccomp{
				Enabled:        &yes,
				Actions:        seccomp.KnownActions(),
				Operators:      seccomp.KnownOperators(),
				Archs:          seccomp.KnownArchs(),
				KnownFlags:     seccomp.KnownFlags(),
				SupportedFlags: seccomp.SupportedFlags(),
			}
			major, minor, patch := seccomp.Version()
			f.Annotations["org.lfedge.moor.libseccomp.version"] = fmt.Sprintf("%d.%d.%d", major, minor, patch)
		}
		return printJSON(f)
	},
}
