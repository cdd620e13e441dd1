package qemu

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lf-edge/moor/devicemodel"
)

// Paths are the device model's files in the run directory.
type Paths struct {
	Config   string // the -readconfig file
	QMP      string // the command monitor
	Listener string // the event monitor
	Console  string // the console chardev's socket
	Log      string // the console log
	PIDFile  string
	// A container app's ports (devicemodel.PortControl, PortStdout,
	// PortStderr): sockets the anchor listens on and qemu connects to.
	AppControl, AppStdout, AppStderr string
}

// PathsIn names the files of a run directory.
func PathsIn(dir string) Paths {
	return Paths{
		Config:   filepath.Join(dir, "qemu.cfg"),
		QMP:      filepath.Join(dir, "qmp"),
		Listener: filepath.Join(dir, "listener.qmp"),
		Console:  filepath.Join(dir, "cons"),
		Log:      filepath.Join(dir, "console.log"),
		PIDFile:  filepath.Join(dir, "pid"),

		AppControl: filepath.Join(dir, "app-control"),
		AppStdout:  filepath.Join(dir, "app-stdout"),
		AppStderr:  filepath.Join(dir, "app-stderr"),
	}
}

// Stale are the files an earlier run leaves behind that must go before qemu
// starts again: sockets and the pidfile.
func (p Paths) Stale() []string {
	return []string{p.QMP, p.Listener, p.Console, p.PIDFile, p.AppControl, p.AppStdout, p.AppStderr}
}

// Binary is qemu's name for an x86-64 guest.
const Binary = "qemu-system-x86_64"

// BinaryFor is qemu's name for a guest of the architecture.
func BinaryFor(arch devicemodel.Arch) string {
	if arch == devicemodel.ARM64 {
		return "qemu-system-aarch64"
	}
	return Binary
}

// Argv is qemu's command line for vm; everything else is in the
// -readconfig file.
func Argv(vm *devicemodel.VM, binary string, p Paths) []string {
	args := []string{binary,
		"-display", "none", "-S", "-no-user-config", "-nodefaults", "-no-shutdown",
		"-serial", "chardev:charserial0",
	}
	if vm.Arch != devicemodel.ARM64 {
		args = append(args, "-machine", "hpet=off")
	}
	if vm.App {
		// A guest whose init died must end, not boot again: its app
		// has no one to run it.
		args = append(args, "-no-reboot")
	}
	args = append(args, "-cpu", cpuModel(vm), "-name", vm.Name)
	if vm.UUID != "" {
		args = append(args, "-uuid", vm.UUID)
	}
	args = append(args, "-readconfig", p.Config, "-pidfile", p.PIDFile)
	if cpus := devicemodel.CPUList(vm.CPUs); len(cpus) > 0 {
		obj := "thread-context,id=tc1"
		for _, c := range cpus {
			obj += ",cpu-affinity=" + strconv.Itoa(c)
		}
		args = append(args, "-object", obj)
	}
	return args
}

func cpuModel(vm *devicemodel.VM) string {
	switch {
	case vm.Hypervisor == devicemodel.TCG:
		return "max"
	case vm.Mode == devicemodel.ModeFML && vm.Arch != devicemodel.ARM64:
		return "host,hv_time,hv_relaxed,hv_vendor_id=eveitis,hypervisor=off,kvm=off,vmx=off"
	}
	return "host"
}

// section is one [group "id"] of a readconfig file; its keys keep their
// order.
type section struct {
	group, id string
	kv        [][2]string
}

func (s *section) set(k, v string) *section {
	s.kv = append(s.kv, [2]string{k, v})
	return s
}

type config struct{ sections []*section }

func (c *config) add(group, id string) *section {
	s := &section{group: group, id: id}
	c.sections = append(c.sections, s)
	return s
}

func (c *config) String() string {
	var b strings.Builder
	for i, s := range c.sections {
		if i > 0 {
			b.WriteString("\n")
		}
		if s.id != "" {
			fmt.Fprintf(&b, "[%s %q]\n", s.group, s.id)
		} else {
			fmt.Fprintf(&b, "[%s]\n", s.group)
		}
		for _, kv := range s.kv {
			fmt.Fprintf(&b, "  %s = %q\n", kv[0], kv[1])
		}
	}
	return b.String()
}

// ReadConfig is the -readconfig file for vm.
func ReadConfig(vm *devicemodel.VM, p Paths) []byte {
	c := &config{}
	machine(c, vm)
	monitors(c, p)
	c.add("memory", "").set("size", strconv.FormatInt(vm.MemoryMiB, 10))
	n := strconv.Itoa(vm.VCPUs)
	c.add("smp-opts", "").set("cpus", n).set("sockets", "1").set("cores", n).set("threads", "1")
	console(c, p)
	if vm.App {
		appPorts(c, p)
	}
	port := 4
	port = disks(c, vm, port)
	port = nics(c, vm, port)
	shares(c, vm, port)
	return []byte(c.String())
}

func machine(c *config, vm *devicemodel.VM) {
	if vm.Arch == devicemodel.ARM64 {
		machineVirt(c, vm)
		return
	}
	m := c.add("machine", "").set("type", "q35").set("dump-guest-core", "off")
	if vm.Hypervisor == devicemodel.KVM {
		m.set("accel", "kvm").set("kernel-irqchip", "on")
	} else {
		m.set("accel", "tcg")
	}
	m.set("vmport", "off")
	boot(m, vm)
	if vm.Hypervisor == devicemodel.KVM {
		c.add("global", "").set("driver", "kvm-pit").set("property", "lost_tick_policy").set("value", "delay")
	}
	c.add("global", "").set("driver", "ICH9-LPC").set("property", "disable_s3").set("value", "1")
	c.add("global", "").set("driver", "ICH9-LPC").set("property", "disable_s4").set("value", "1")
	c.add("rtc", "").set("base", "localtime").set("driftfix", "slew")
	pflash(c, vm)
}

// machineVirt is arm64's virt machine: a GIC (the host's under kvm,
// version 3 under tcg), the PL011 UART as the serial port, no x86
// devices, and no rtc drift fix (an x86 option).
func machineVirt(c *config, vm *devicemodel.VM) {
	m := c.add("machine", "").set("type", "virt").set("dump-guest-core", "off")
	if vm.Hypervisor == devicemodel.KVM {
		m.set("accel", "kvm").set("gic-version", "host")
	} else {
		m.set("accel", "tcg").set("gic-version", "3")
	}
	boot(m, vm)
	c.add("rtc", "").set("base", "localtime")
	pflash(c, vm)
}

// boot sets the machine's firmware and direct kernel boot.
func boot(m *section, vm *devicemodel.VM) {
	if vm.Firmware != "" && vm.Mode != devicemodel.ModeFML {
		m.set("firmware", vm.Firmware)
	}
	if vm.Kernel != "" {
		m.set("kernel", vm.Kernel)
	}
	if vm.Initrd != "" {
		m.set("initrd", vm.Initrd)
	}
	if vm.Cmdline != "" {
		m.set("append", vm.Cmdline)
	}
}

// pflash adds UEFI's code and variable store of mode fml.
func pflash(c *config, vm *devicemodel.VM) {
	if vm.Mode == devicemodel.ModeFML {
		c.add("drive", "drive-ovmf-code").set("if", "pflash").set("format", "raw").
			set("readonly", "on").set("file", vm.Firmware)
		if vm.FirmwareVars != "" { // the VM's own variable store: writable
			c.add("drive", "drive-ovmf-vars").set("if", "pflash").set("format", "raw").
				set("file", vm.FirmwareVars)
		}
	}
}

func monitors(c *config, p Paths) {
	for _, m := range []struct{ chardev, mon, path string }{
		{"charmonitor", "monitor", p.QMP}, {"charlistener", "listener", p.Listener},
	} {
		c.add("chardev", m.chardev).set("backend", "socket").set("path", m.path).
			set("server", "on").set("wait", "off")
		c.add("mon", m.mon).set("chardev", m.chardev).set("mode", "control")
	}
}

// console is EVE's: the ISA serial and a virtconsole share one socket
// chardev, whose output is also logged into the console log.
func console(c *config, p Paths) {
	c.add("chardev", "charserial0").set("backend", "socket").set("mux", "on").
		set("path", p.Console).set("server", "on").set("wait", "off").
		set("logfile", p.Log).set("logappend", "on")
	c.add("device", "virtio-serial0").set("driver", "virtio-serial-pci").set("addr", "3")
	c.add("device", "console0").set("driver", "virtconsole").set("chardev", "charserial0").
		set("name", "org.lfedge.eve.console.0")
}

// rootPort adds a pcie-root-port for one device and returns its id.
func rootPort(c *config, port int) string {
	id := "pci." + strconv.Itoa(port)
	c.add("device", id).set("driver", "pcie-root-port").set("port", fmt.Sprintf("1%d", port)).
		set("chassis", strconv.Itoa(port)).set("bus", "pcie.0").set("addr", fmt.Sprintf("0x%x", port))
	return id
}

func disks(c *config, vm *devicemodel.VM, port int) int {
	for i, d := range vm.Disks {
		bus := rootPort(c, port)
		port++
		drive := fmt.Sprintf("drive-virtio-disk%d", i)
		dr := c.add("drive", drive).set("file", d.Path).set("format", d.Format).
			set("if", "none").set("aio", "threads").set("cache", "writeback")
		if d.ReadOnly {
			dr.set("readonly", "on")
		}
		c.add("device", fmt.Sprintf("virtio-disk%d", i)).set("driver", "virtio-blk-pci").
			set("drive", drive).set("bus", bus).set("addr", "0x0")
	}
	return port
}

func nics(c *config, vm *devicemodel.VM, port int) int {
	for i, n := range vm.NICs {
		bus := rootPort(c, port)
		port++
		netdev := fmt.Sprintf("hostnet%d", i)
		c.add("netdev", netdev).set("type", "tap").set("ifname", n.Tap).
			set("script", "no").set("downscript", "no")
		dev := c.add("device", fmt.Sprintf("net%d", i)).set("driver", "virtio-net-pci").
			set("netdev", netdev).set("bus", bus).set("addr", "0x0")
		if n.MAC != "" {
			dev.set("mac", n.MAC)
		}
	}
	return port
}

// shares exports each share over virtio-9p as EVE does (security model
// none: qemu's own rights; multidevs remap: inode numbers stay unique
// across the host file systems under the share), read-only when asked.
func shares(c *config, vm *devicemodel.VM, port int) {
	for i, sh := range vm.Shares {
		bus := rootPort(c, port)
		port++
		fsdev := fmt.Sprintf("fsdev%d", i)
		f := c.add("fsdev", fsdev).set("fsdriver", "local").set("path", sh.Path).
			set("security_model", "none").set("multidevs", "remap")
		if sh.ReadOnly {
			f.set("readonly", "on")
		}
		c.add("device", fmt.Sprintf("share%d", i)).set("driver", "virtio-9p-pci").
			set("fsdev", fsdev).set("mount_tag", sh.Tag).set("bus", bus).set("addr", "0x0")
	}
}

// appPorts are a container app's control and output ports on the
// console's virtio-serial bus, each a socket qemu connects to; what the
// app writes is also logged into the console log.
func appPorts(c *config, p Paths) {
	for _, port := range []struct {
		id, path, name string
		log            bool
	}{
		{"moorctl", p.AppControl, devicemodel.PortControl, false},
		{"moorout", p.AppStdout, devicemodel.PortStdout, true},
		{"moorerr", p.AppStderr, devicemodel.PortStderr, true},
	} {
		chardev := "char" + port.id
		ch := c.add("chardev", chardev).set("backend", "socket").set("path", port.path).set("server", "off")
		if port.log {
			ch.set("logfile", p.Log).set("logappend", "on")
		}
		c.add("device", port.id).set("driver", "virtserialport").set("bus", "virtio-serial0.0").
			set("chardev", chardev).set("name", port.name)
	}
}

// Bridges maps each tap to the bridge the anchor puts it in.
func Bridges(vm *devicemodel.VM) map[string]string {
	out := map[string]string{}
	for _, n := range vm.NICs {
		if n.Bridge != "" {
			out[n.Tap] = n.Bridge
		}
	}
	return out
}
