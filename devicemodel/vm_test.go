package devicemodel

import (
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

type fixedProbe bool

func (p fixedProbe) KVM() bool { return bool(p) }

func TestParseRejects(t *testing.T) {
	for desc, field := range map[string]string{
		`{"name":"a","memoryMiB":128,"colour":"red"}`:                                  "colour",
		`{"memoryMiB":128}`:                                                            "name",
		`{"name":"a"}`:                                                                 "memoryMiB",
		`{"name":"a","memoryMiB":128,"mode":"weird"}`:                                  "mode",
		`{"name":"a","memoryMiB":128,"hypervisor":"vbox"}`:                             "hypervisor",
		`{"name":"a","memoryMiB":128,"mode":"nohyper","hypervisor":"kvm"}`:             "hypervisor",
		`{"name":"a","memoryMiB":128,"mode":"pvh","hypervisor":"kvm"}`:                 "mode",
		`{"name":"a","memoryMiB":128,"initrd":"/i"}`:                                   "initrd",
		`{"name":"a","memoryMiB":128,"cmdline":"quiet"}`:                               "cmdline",
		`{"name":"a","memoryMiB":128,"mode":"fml"}`:                                    "firmware",
		`{"name":"a","memoryMiB":128,"mode":"fml","firmware":"/f","kernel":"/k"}`:      "kernel",
		`{"name":"a","memoryMiB":128,"mode":"pv","hypervisor":"xen"}`:                  "kernel",
		`{"name":"a","memoryMiB":128,"cpus":"3-1"}`:                                    "cpus",
		`{"name":"a","memoryMiB":128,"uuid":"nope"}`:                                   "uuid",
		`{"name":"a","memoryMiB":128,"disks":[{"path":"rel.img"}]}`:                    "disks[0].path",
		`{"name":"a","memoryMiB":128,"disks":[{"path":"/d","format":"iso9660"}]}`:      "disks[0].format",
		`{"name":"a","memoryMiB":128,"nics":[{"tap":"a-very-long-tap-name"}]}`:         "nics[0].tap",
		`{"name":"a","memoryMiB":128,"nics":[{"tap":"t0"},{"tap":"t0"}]}`:              "nics[1].tap",
		`{"name":"a","memoryMiB":128,"nics":[{"tap":"t0","mac":"01:00:5e:00:00:01"}]}`: "nics[0].mac",
		`{"name":"a","memoryMiB":128,"vmmMaxMemMiB":-1}`:                               "vmmMaxMemMiB",
	} {
		_, err := Parse(strings.NewReader(desc), fixedProbe(false))
		if !errors.Is(err, ErrInvalidVM) || !strings.Contains(err.Error(), field) {
			t.Errorf("Parse(%s) = %v, want an ErrInvalidVM naming %s", desc, err, field)
		}
	}
}

func TestDefaults(t *testing.T) {
	for probe, want := range map[bool]Hypervisor{true: KVM, false: TCG} {
		vm, err := Parse(strings.NewReader(`{"name":"demo","memoryMiB":128}`), fixedProbe(probe))
		if err != nil {
			t.Fatal(err)
		}
		if vm.Hypervisor != want || vm.Mode != ModeHVM || vm.VCPUs != 1 {
			t.Errorf("defaults with kvm=%v: %+v", probe, vm)
		}
	}
}

func TestOverhead(t *testing.T) {
	for _, c := range []struct {
		vm   VM
		want int64
	}{
		// EVE's example: 1 GiB, 2 vCPUs ≈ 350+20+25.6+6 MiB.
		{VM{MemoryMiB: 1024, VCPUs: 2}, 370<<20 + (1024<<20)*25/1000 + 6<<20},
		{VM{MemoryMiB: 128, VCPUs: 1}, 370<<20 + (128<<20)*25/1000 + 3<<20},
		{VM{MemoryMiB: 128, VCPUs: 1, VMMMaxMemMiB: 200}, 200 << 20},
	} {
		if got := Overhead(&c.vm); got != c.want {
			t.Errorf("Overhead(%+v) = %d, want %d", c.vm, got, c.want)
		}
		if got := MemoryLimit(&c.vm); got != c.vm.MemoryMiB<<20+c.want {
			t.Errorf("MemoryLimit(%+v) = %d", c.vm, got)
		}
	}
}

func TestTaskSpecGolden(t *testing.T) {
	loader := &specs.Spec{
		Root: &specs.Root{Path: "/containers/services/xen-tools/rootfs"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/run", Type: "bind", Source: "/run", Options: []string{"rbind", "rw"}},
			{Destination: "/hostfs", Type: "bind", Source: "/", Options: []string{"rbind", "ro"}},
		},
	}
	for name, c := range map[string]struct {
		desc   string
		loader *specs.Spec
	}{
		"spec-host-root": {`{"name":"demo","memoryMiB":128,"vcpus":1}`, nil},
		"spec-loader-kvm": {`{"name":"vm1","hypervisor":"kvm","memoryMiB":1024,"vcpus":2,"cpus":"2-3","kernel":"/vol/k","initrd":"/vol/i","cmdline":"quiet",
			"disks":[{"path":"/vol/root.img"},{"path":"/vol/ro.img","readonly":true}],"nics":[{"tap":"nbu1x1","bridge":"bn1"}]}`, loader},
		"spec-loader-xen": {`{"name":"xen1","hypervisor":"xen","memoryMiB":512,"vmmMaxMemMiB":64}`, loader},
	} {
		t.Run(name, func(t *testing.T) {
			vm, err := Parse(strings.NewReader(c.desc), fixedProbe(false))
			if err != nil {
				t.Fatal(err)
			}
			s, inTask, err := TaskSpec(vm, SpecOptions{Loader: c.loader, Anchor: "/usr/bin/moor", RunDir: "/bundle/vm", XL: "/usr/sbin/xl"})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.MarshalIndent(struct {
				Spec *specs.Spec `json:"spec"`
				VM   *VM         `json:"vm"`
			}{s, inTask}, "", "  ")
			checkGolden(t, name+".json", append(b, '\n'))
		})
	}
}

func TestTaskSpecRejectsNoHyper(t *testing.T) {
	vm := &VM{Name: "c", Mode: ModeNoHyper, MemoryMiB: 64, VCPUs: 1}
	if _, _, err := TaskSpec(vm, SpecOptions{Anchor: "/moor", RunDir: "/b/vm"}); !errors.Is(err, ErrInvalidVM) {
		t.Errorf("TaskSpec(nohyper) = %v, want ErrInvalidVM", err)
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, name, got, *update)
}
