package devicemodel

import (
	"errors"
	"strings"
	"testing"
)

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
		`{"name":"a","memoryMiB":128,"nics":[{"tap":".."}]}`:                           "nics[0].tap",
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

func TestNameChecks(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, c := range []struct {
		check func(string) bool
		s     string
		want  bool
	}{
		{validName, "a", true},
		{validName, "Vm-1_x.y", true},
		{validName, long, true},
		{validName, long + "a", false},
		{validName, "", false},
		{validName, "-a", false},
		{validName, ".a", false},
		{validName, "a b", false},
		{validName, "a/b", false},
		{validName, "é", false},
		{validUUID, "6ba7b810-9dad-11d1-80b4-00c04fd430c8", true},
		{validUUID, "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", true},
		{validUUID, "6ba7b810-9dad-11d1-80b4-00c04fd430c", false},
		{validUUID, "6ba7b8109-dad-11d1-80b4-00c04fd430c8", false},
		{validUUID, "6ba7b810-9dad-11d1-80b4-00c04fd430cg", false},
		{validUUID, "6ba7b810-9dad-11d1-80b4-00c04fd430c8a", false},
	} {
		if got := c.check(c.s); got != c.want {
			t.Errorf("check(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

func TestFirmwareVars(t *testing.T) {
	const fml = `"name":"a","memoryMiB":128,"mode":"fml","firmware":"/ovmf/OVMF_CODE.fd"`
	for _, c := range []struct {
		desc string
		want string // in the error; empty: accepted
	}{
		{`{` + fml + `}`, ""},
		{`{` + fml + `,"firmwareVars":"/ovmf/OVMF_VARS.fd"}`, ""},
		{`{` + fml + `,"hypervisor":"kvm","firmwareVars":"/ovmf/OVMF_VARS.fd"}`, ""},
		{`{` + fml + `,"firmwareVars":"OVMF_VARS.fd"}`, `firmwareVars: "OVMF_VARS.fd" is not an absolute path`},
		{`{"name":"a","memoryMiB":128,"firmwareVars":"/ovmf/OVMF_VARS.fd"}`, "firmwareVars: only mode fml"},
		{`{"name":"a","memoryMiB":128,"mode":"pv","firmware":"/f","firmwareVars":"/ovmf/OVMF_VARS.fd"}`, "firmwareVars: only mode fml"},
		{`{` + fml + `,"hypervisor":"xen","firmwareVars":"/ovmf/OVMF_VARS.fd"}`, "firmwareVars: qemu only"},
	} {
		_, err := Parse(strings.NewReader(c.desc), fixedProbe(false))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Parse(%s) = %v, want it accepted", c.desc, err)
		case c.want != "" && (!errors.Is(err, ErrInvalidVM) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("Parse(%s) = %v, want an ErrInvalidVM saying %q", c.desc, err, c.want)
		}
	}
}
