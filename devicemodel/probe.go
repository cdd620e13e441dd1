package devicemodel

import (
	"os"

	"golang.org/x/sys/unix"
)

// HostProbe asks the running kernel.
type HostProbe struct {
	// DevKVM is the KVM device, /dev/kvm when empty.
	DevKVM string
}

const kvmCreateVM = 0xAE01 // _IO(KVMIO, 0x01)

// KVM reports whether the KVM device opens and makes a VM: a /dev/kvm that
// exists on a host without virtualisation extensions may not.
func (p HostProbe) KVM() bool {
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
