package devicemodel

import (
	"bytes"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// HostProbe asks the running kernel.
type HostProbe struct {
	// DevKVM is the KVM device, /dev/kvm when empty.
	DevKVM string
	// CPUInfo is /proc/cpuinfo when empty.
	CPUInfo string
}

const kvmCreateVM = 0xAE01 // _IO(KVMIO, 0x01)

// KVM reports whether the KVM device opens and makes a VM and, on x86,
// whether the CPU shows VT-x or AMD-V: a /dev/kvm that exists on a host
// without them (nested, emulated) cannot run a guest.
func (p HostProbe) KVM() bool {
	if runtime.GOARCH == "amd64" && !p.virtFlags() {
		return false
	}
	dev := p.DevKVM
	if dev == "" {
		dev = "/dev/kvm"
	}
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	vmfd, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), kvmCreateVM, 0)
	if errno != 0 {
		return false
	}
	unix.Close(int(vmfd))
	return true
}

// virtFlags reports whether the CPU flags name vmx or svm.
func (p HostProbe) virtFlags() bool {
	path := p.CPUInfo
	if path == "" {
		path = "/proc/cpuinfo"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("flags")) {
			continue
		}
		for _, f := range bytes.Fields(line) {
			if string(f) == "vmx" || string(f) == "svm" {
				return true
			}
		}
	}
	return false
}
