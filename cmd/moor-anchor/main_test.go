package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The lean anchor must not link what makes moor big: every package it
// links is resident memory of every hypervisor task.
func TestLeanDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/opencontainers/", // libcontainer, runtime-spec, cgroups
		"github.com/urfave/cli",
		"github.com/vishvananda/",
		"github.com/godbus/",
		"github.com/coreos/go-systemd",
		"github.com/digitalocean/", // go-qemu, go-libvirt
		"github.com/lf-edge/moor/supervisor",
		"github.com/lf-edge/moor/lifecycle",
		"github.com/lf-edge/moor/cgroup",
		"github.com/lf-edge/moor/vmbundle", // and vmbundle/taskspec
		"github.com/lf-edge/moor/initramfs",
		"github.com/moby/sys/mountinfo",
		"regexp",
		"net/http",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("moor-anchor links %s", pkg)
			}
		}
	}
}
