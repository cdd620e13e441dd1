package devicemodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"

	"github.com/lf-edge/moor/cpulist"
	"github.com/lf-edge/moor/ifname"
)

// ErrInvalidVM is returned for a VM description with an unknown, missing,
// malformed or contradictory field; the message names the field.
var ErrInvalidVM = errors.New("invalid vm description")

func vmErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidVM, field, fmt.Sprintf(format, args...))
}

// Mode is how the guest is virtualised, EVE's VmMode.
type Mode string

const (
	ModeHVM     Mode = "hvm"     // fully virtualised (the default)
	ModePV      Mode = "pv"      // paravirtualised kernel
	ModePVH     Mode = "pvh"     // PV in an HVM container (Xen)
	ModeFML     Mode = "fml"     // UEFI firmware, hypervisor hidden from the guest
	ModeNoHyper Mode = "nohyper" // no VM at all: a bare container task
)

// Hypervisor is what runs the guest.
type Hypervisor string

const (
	KVM Hypervisor = "kvm" // qemu with KVM
	TCG Hypervisor = "tcg" // qemu emulating the CPU: no /dev/kvm needed
	Xen Hypervisor = "xen" // xl
)

// Disk is one block device of the guest.
type Disk struct {
	Path     string `json:"path"`
	Format   string `json:"format,omitempty"` // raw (default), qcow2, vmdk, vhdx
	ReadOnly bool   `json:"readonly,omitempty"`
}

// Arch is the guest's CPU architecture, as Go names it.
type Arch string

const (
	AMD64 Arch = "amd64" // x86-64: qemu-system-x86_64, machine q35
	ARM64 Arch = "arm64" // AArch64: qemu-system-aarch64, machine virt
)

// HostArch is the architecture moor was built for, the default of a VM.
func HostArch() Arch { return Arch(runtime.GOARCH) }

// Share is a host directory the guest mounts over virtio-9p by its tag.
type Share struct {
	Tag      string `json:"tag"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"readonly,omitempty"`
}

// NIC is one network interface: a tap on the host side, put in a bridge.
type NIC struct {
	Tap    string `json:"tap"`
	MAC    string `json:"mac,omitempty"`
	Bridge string `json:"bridge,omitempty"`
}

// VM is the description of one guest: what EVE's DomainConfig holds that
// a device model needs.
type VM struct {
	Name       string     `json:"name"`
	UUID       string     `json:"uuid,omitempty"`
	Mode       Mode       `json:"mode,omitempty"`
	Hypervisor Hypervisor `json:"hypervisor,omitempty"`
	// Arch is the guest's architecture; the host's by default.
	Arch      Arch   `json:"arch,omitempty"`
	MemoryMiB int64  `json:"memoryMiB"`
	VCPUs     int    `json:"vcpus,omitempty"`
	CPUs      string `json:"cpus,omitempty"` // pinning: a CPU list, "0-1,3"
	Kernel    string `json:"kernel,omitempty"`
	Initrd    string `json:"initrd,omitempty"`
	Cmdline   string `json:"cmdline,omitempty"`
	Disks     []Disk `json:"disks,omitempty"`
	NICs      []NIC  `json:"nics,omitempty"`
	// Shares are host directories shared with the guest over virtio-9p
	// (qemu only), one mount tag each.
	Shares []Share `json:"shares,omitempty"`
	// App says the guest runs a container app under moor's guest init
	// (moor vm spec --app): the VM gets the app's control and output
	// ports, and the anchor exits with the app's status (qemu only).
	App      bool   `json:"app,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	// FirmwareVars is the template of the UEFI variable store
	// (OVMF_VARS.fd) of mode fml under qemu: each VM boots with its own
	// writable copy of it, made once and kept across restarts. In the
	// task's own description (VMFile) it names that copy.
	FirmwareVars string `json:"firmwareVars,omitempty"`
	// VMMMaxMemMiB, when set, is the anchor tax instead of EVE's estimate.
	VMMMaxMemMiB int64 `json:"vmmMaxMemMiB,omitempty"`
}

// Probe answers what the host offers, for the defaults.
type Probe interface {
	// KVM reports whether /dev/kvm exists and can make a VM.
	KVM() bool
}

// Parse reads a VM description, fills in defaults (mode hvm, 1 vCPU, the
// hypervisor probe says) and validates it.
func Parse(r io.Reader, probe Probe) (*VM, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var vm VM
	if err := dec.Decode(&vm); err != nil {
		return nil, fmt.Errorf("parse vm description: %w: %w", ErrInvalidVM, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parse vm description: %w: trailing data after the object", ErrInvalidVM)
	}
	vm.SetDefaults(probe)
	if err := vm.Validate(); err != nil {
		return nil, fmt.Errorf("parse vm description: %w", err)
	}
	return &vm, nil
}

// SetDefaults fills the fields a description may leave out.
func (vm *VM) SetDefaults(probe Probe) {
	if vm.Mode == "" {
		vm.Mode = ModeHVM
	}
	if vm.VCPUs == 0 {
		vm.VCPUs = 1
	}
	if vm.Arch == "" {
		vm.Arch = HostArch()
	}
	if vm.Hypervisor == "" && vm.Mode != ModeNoHyper {
		vm.Hypervisor = TCG
		if probe != nil && probe.KVM() {
			vm.Hypervisor = KVM
		}
	}
	for i := range vm.Disks {
		if vm.Disks[i].Format == "" {
			vm.Disks[i].Format = "raw"
		}
	}
}

// validName: 1-64 letters, digits and _.-, a letter or digit first.
func validName(s string) bool { return wordOf(s, 64) && isAlnum(s[0]) }

// wordOf reports whether s is 1 to max letters, digits and _.-. (Plain
// loops, not regexps: the anchor parses descriptions too and should not
// carry a regexp engine.)
func wordOf(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// validUUID: 8-4-4-4-12 hex digits.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

var diskFormats = map[string]bool{"raw": true, "qcow2": true, "vmdk": true, "vhdx": true}

// Validate checks every field and the ways they can contradict each other.
func (vm *VM) Validate() error {
	if !validName(vm.Name) {
		return vmErr("name", "%q: want 1-64 letters, digits and _.-", vm.Name)
	}
	if vm.UUID != "" && !validUUID(vm.UUID) {
		return vmErr("uuid", "%q is not a UUID", vm.UUID)
	}
	if err := vm.validateMode(); err != nil {
		return err
	}
	if err := vm.validateArch(); err != nil {
		return err
	}
	if err := vm.CheckSizes(); err != nil {
		return err
	}
	if vm.CPUs != "" {
		if _, err := cpulist.Parse(vm.CPUs); err != nil {
			return vmErr("cpus", "%q: %v", vm.CPUs, err)
		}
	}
	if err := vm.validateBoot(); err != nil {
		return err
	}
	for i, d := range vm.Disks {
		field := fmt.Sprintf("disks[%d]", i)
		if !filepath.IsAbs(d.Path) {
			return vmErr(field+".path", "%q is not an absolute path", d.Path)
		}
		if !diskFormats[d.Format] {
			return vmErr(field+".format", "%q: want raw, qcow2, vmdk or vhdx", d.Format)
		}
	}
	if err := vm.validateNICs(); err != nil {
		return err
	}
	return vm.validateShares()
}

// MaxTagLen is the longest 9p mount tag: the limit of older qemu.
const MaxTagLen = 31

func (vm *VM) validateShares() error {
	if (len(vm.Shares) > 0 || vm.App) && vm.Hypervisor == Xen {
		field := "shares"
		if vm.App {
			field = "app"
		}
		return vmErr(field, "qemu only (hypervisor kvm or tcg), not xen")
	}
	if vm.App && vm.Kernel == "" {
		return vmErr("kernel", "a container app boots a kernel: name it")
	}
	tags := map[string]bool{}
	for i, sh := range vm.Shares {
		field := fmt.Sprintf("shares[%d]", i)
		if !wordOf(sh.Tag, MaxTagLen) {
			return vmErr(field+".tag", "%q: want 1-%d letters, digits and _.-", sh.Tag, MaxTagLen)
		}
		if tags[sh.Tag] {
			return vmErr(field+".tag", "%q is used twice", sh.Tag)
		}
		tags[sh.Tag] = true
		if !filepath.IsAbs(sh.Path) {
			return vmErr(field+".path", "%q is not an absolute path", sh.Path)
		}
	}
	return nil
}

// The bounds of a VM's sizes.
const (
	// MaxMemMiB bounds memoryMiB and vmmMaxMemMiB: 4 PiB, the 52-bit
	// physical address space, the largest x86-64 and arm64 define. Far
	// below 2^63 bytes, so the memory limit (RAM + tax) cannot overflow.
	MaxMemMiB = 1 << 32
	// MaxVCPUs is the most vCPUs a guest may have (qemu's pc machine).
	MaxVCPUs = 255
)

// CheckSizes checks the sizes the task's limits are computed from:
// memoryMiB 1 to MaxMemMiB, vcpus 1 to MaxVCPUs, vmmMaxMemMiB 0 (EVE's
// estimate) to MaxMemMiB. Within them, MemoryLimit and the CPU quota are
// exact.
func (vm *VM) CheckSizes() error {
	if vm.MemoryMiB <= 0 || vm.MemoryMiB > MaxMemMiB {
		return vmErr("memoryMiB", "%d: want 1 to %d MiB", vm.MemoryMiB, int64(MaxMemMiB))
	}
	if vm.VCPUs < 1 || vm.VCPUs > MaxVCPUs {
		return vmErr("vcpus", "%d: want 1 to %d", vm.VCPUs, MaxVCPUs)
	}
	if vm.VMMMaxMemMiB < 0 || vm.VMMMaxMemMiB > MaxMemMiB {
		return vmErr("vmmMaxMemMiB", "%d: want 0 (EVE's estimate) to %d MiB", vm.VMMMaxMemMiB, int64(MaxMemMiB))
	}
	return nil
}

func (vm *VM) validateMode() error {
	switch vm.Mode {
	case ModeHVM, ModePV, ModePVH, ModeFML:
	case ModeNoHyper:
		if vm.Hypervisor != "" {
			return vmErr("hypervisor", "%q contradicts mode nohyper, which runs no hypervisor", vm.Hypervisor)
		}
		return nil
	default:
		return vmErr("mode", "%q: want hvm, pv, pvh, fml or nohyper", vm.Mode)
	}
	switch vm.Hypervisor {
	case KVM, TCG:
		if vm.Mode == ModePVH {
			return vmErr("mode", "pvh needs hypervisor xen, not %s", vm.Hypervisor)
		}
	case Xen:
	default:
		return vmErr("hypervisor", "%q: want kvm, xen or tcg", vm.Hypervisor)
	}
	return nil
}

func (vm *VM) validateArch() error {
	switch vm.Arch {
	case AMD64, ARM64:
	default:
		return vmErr("arch", "%q: want amd64 or arm64", vm.Arch)
	}
	if vm.Hypervisor == KVM && vm.Arch != HostArch() {
		return vmErr("arch", "%s under kvm on a %s host: kvm runs the host's architecture (use tcg)", vm.Arch, HostArch())
	}
	return nil
}

func (vm *VM) validateBoot() error {
	for field, p := range map[string]string{"kernel": vm.Kernel, "initrd": vm.Initrd, "firmware": vm.Firmware, "firmwareVars": vm.FirmwareVars} {
		if p != "" && !filepath.IsAbs(p) {
			return vmErr(field, "%q is not an absolute path", p)
		}
	}
	if vm.FirmwareVars != "" {
		if vm.Mode != ModeFML {
			return vmErr("firmwareVars", "only mode fml boots UEFI firmware with a variable store, not mode %s", vm.Mode)
		}
		if vm.Hypervisor == Xen {
			return vmErr("firmwareVars", "qemu only (hypervisor kvm or tcg): xen keeps no per-VM variable store")
		}
	}
	if vm.Kernel == "" {
		if vm.Initrd != "" {
			return vmErr("initrd", "needs a kernel")
		}
		if vm.Cmdline != "" {
			return vmErr("cmdline", "needs a kernel")
		}
	}
	switch vm.Mode {
	case ModeFML:
		if vm.Firmware == "" {
			return vmErr("firmware", "mode fml boots UEFI firmware: name its code image (OVMF_CODE.fd)")
		}
		if vm.Kernel != "" {
			return vmErr("kernel", "contradicts mode fml, which boots its firmware")
		}
	case ModePV, ModePVH:
		if vm.Hypervisor == Xen && vm.Kernel == "" {
			return vmErr("kernel", "mode %s on xen needs a kernel", vm.Mode)
		}
	}
	return nil
}

func (vm *VM) validateNICs() error {
	seen := map[string]bool{}
	for i, n := range vm.NICs {
		field := fmt.Sprintf("nics[%d]", i)
		if !ifname.Valid(n.Tap) {
			return vmErr(field+".tap", "%q: want 1-15 letters, digits and _.-", n.Tap)
		}
		if seen[n.Tap] {
			return vmErr(field+".tap", "%q is used twice", n.Tap)
		}
		seen[n.Tap] = true
		if n.MAC != "" {
			hw, err := net.ParseMAC(n.MAC)
			if err != nil || len(hw) != 6 {
				return vmErr(field+".mac", "%q is not a 48-bit MAC address", n.MAC)
			}
			if hw[0]&1 == 1 {
				return vmErr(field+".mac", "%q is a multicast address", n.MAC)
			}
		}
		if n.Bridge != "" && !ifname.Valid(n.Bridge) {
			return vmErr(field+".bridge", "%q is not an interface name", n.Bridge)
		}
	}
	return nil
}

// CPUList expands a valid CPU list ("0-2,5") into its CPUs.
func CPUList(s string) []int {
	if s == "" {
		return nil
	}
	cpus, _ := cpulist.Parse(s)
	return cpus
}

// IsQemu reports whether qemu is the device model (kvm or tcg).
func (vm *VM) IsQemu() bool { return vm.Hypervisor == KVM || vm.Hypervisor == TCG }
