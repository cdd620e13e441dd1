package xl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lf-edge/moor/devicemodel"
)

// Config is the xl cfg of vm, in EVE's fields (pkg/pillar/hypervisor/xen.go).
func Config(vm *devicemodel.VM) []byte {
	var b strings.Builder
	str := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, quote(v)) }
	num := func(k string, v int64) { fmt.Fprintf(&b, "%s = %d\n", k, v) }
	list := func(k string, vs []string) {
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = quote(v)
		}
		fmt.Fprintf(&b, "%s = [%s]\n", k, strings.Join(q, ", "))
	}

	str("name", vm.Name)
	str("type", domainType(vm.Mode))
	if vm.UUID != "" {
		str("uuid", vm.UUID)
	}
	if vm.Mode == devicemodel.ModeFML {
		str("hdtype", "ahci")
		num("spoof_xen", 1)
		num("pci_permissive", 1)
	}
	switch {
	case vm.Kernel != "":
		str("kernel", vm.Kernel)
	case vm.Firmware != "":
		str("firmware", vm.Firmware)
	}
	if vm.Initrd != "" {
		str("ramdisk", vm.Initrd)
	}
	if extra := extra(vm); extra != "" {
		str("extra", extra)
	}
	num("vnc", 0)
	num("nographic", 1)
	str("vga", "none")
	num("memory", vm.MemoryMiB)
	num("maxmem", vm.MemoryMiB)
	num("vcpus", int64(vm.VCPUs))
	num("maxvcpus", int64(vm.VCPUs))
	if cpus := devicemodel.CPUList(vm.CPUs); len(cpus) > 0 {
		s := make([]string, len(cpus))
		for i, c := range cpus {
			s[i] = strconv.Itoa(c)
		}
		str("cpus", strings.Join(s, ","))
	}
	str("boot", "dc")
	if len(vm.Disks) > 0 {
		list("disk", disks(vm))
	}
	if len(vm.NICs) > 0 {
		list("vif", vifs(vm))
	}
	list("serial", []string{"pty"})
	return []byte(b.String())
}

// quote writes an xl string: single quotes unless the value holds one.
func quote(s string) string {
	if strings.Contains(s, "'") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return "'" + s + "'"
}

func domainType(m devicemodel.Mode) string {
	switch m {
	case devicemodel.ModePV:
		return "pv"
	case devicemodel.ModePVH:
		return "pvh"
	}
	return "hvm"
}

// extra is the kernel command line; a PV guest's console is hvc0.
func extra(vm *devicemodel.VM) string {
	if vm.Mode != devicemodel.ModePV {
		return vm.Cmdline
	}
	s := "console=hvc0"
	if vm.UUID != "" {
		s += " appuuid=" + vm.UUID
	}
	if vm.Cmdline != "" {
		s += " " + vm.Cmdline
	}
	return s
}

func disks(vm *devicemodel.VM) []string {
	out := make([]string, len(vm.Disks))
	for i, d := range vm.Disks {
		mode := "rw"
		if d.ReadOnly {
			mode = "ro"
		}
		out[i] = fmt.Sprintf("%s,%s,xvd%c,%s", d.Path, d.Format, 'a'+i, mode)
	}
	return out
}

func vifs(vm *devicemodel.VM) []string {
	typ := "vif"
	if vm.Mode == devicemodel.ModeFML {
		typ = "ioemu"
	}
	out := make([]string, len(vm.NICs))
	for i, n := range vm.NICs {
		var f []string
		if n.Bridge != "" {
			f = append(f, "bridge="+n.Bridge)
		}
		f = append(f, "vifname="+n.Tap)
		if n.MAC != "" {
			f = append(f, "mac="+n.MAC)
		}
		out[i] = strings.Join(append(f, "type="+typ), ",")
	}
	return out
}
