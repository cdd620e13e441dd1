package vmm

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
)

// attachTaps puts each tap qemu made into its bridge and brings it up, with
// the ioctls brctl addif and ifconfig up use: a netlink library would cost
// the anchor more than these three calls.
func attachTaps(vm *devicemodel.VM) error {
	bridges := qemu.Bridges(vm)
	if len(bridges) == 0 {
		return nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("attach taps: make socket: %w", err)
	}
	defer unix.Close(fd)
	for tap, bridge := range bridges {
		if err := attachTap(fd, tap, bridge); err != nil {
			return err
		}
	}
	return nil
}

// attachTap makes tap a port of bridge and sets it up; fd is any socket.
func attachTap(fd int, tap, bridge string) error {
	ifr, err := unix.NewIfreq(tap)
	if err != nil {
		return fmt.Errorf("attach tap %s: %w", tap, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return fmt.Errorf("attach tap %s: %w", tap, err)
	}
	index := ifr.Uint32()
	br, err := unix.NewIfreq(bridge)
	if err != nil {
		return fmt.Errorf("attach tap %s to bridge %s: %w", tap, bridge, err)
	}
	br.SetUint32(index)
	if err := unix.IoctlIfreq(fd, unix.SIOCBRADDIF, br); err != nil {
		return fmt.Errorf("attach tap %s to bridge %s: %w", tap, bridge, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring tap %s up: %w", tap, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring tap %s up: %w", tap, err)
	}
	return nil
}
