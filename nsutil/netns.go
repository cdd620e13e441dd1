package nsutil

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNoLink means a network interface of that name is not in the namespace.
var ErrNoLink = errors.New("no such network interface")

// NewPinnedNet makes a new network namespace with its loopback up and pins
// it by bind-mounting it on path (a file it creates), so it outlives every
// process in it until UnpinNet.
func NewPinnedNet(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("new network namespace: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() { errc <- pinNewNet(path) }()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("new network namespace at %s: %w", path, err)
	}
	if err := loopbackUp(path); err != nil {
		_ = UnpinNet(path)
		return fmt.Errorf("new network namespace at %s: %w", path, err)
	}
	return nil
}

// pinNewNet unshares the calling goroutine's thread into a new network
// namespace, bind-mounts it on path and goes back. It must run on a
// goroutine of its own: if going back fails, the thread stays locked and
// dies with the goroutine.
func pinNewNet(path string) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("unshare: %w", err)
	}
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	mountErr := unix.Mount(self, path, "", unix.MS_BIND, "")
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("return to own network namespace: %w", err) // the thread dies locked
	}
	runtime.UnlockOSThread()
	if mountErr != nil {
		return fmt.Errorf("bind %s: %w", self, mountErr)
	}
	return nil
}

// loopbackUp brings up lo in the network namespace at nsPath.
func loopbackUp(nsPath string) error {
	h, ns, err := handleAt(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// UnpinNet unmounts a namespace pinned by NewPinnedNet and removes the
// file. A path that does not exist is not an error.
func UnpinNet(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin network namespace %s: %w", path, err)
	}
	return nil
}

// ReturnLink moves the interface named inside from the network namespace
// at nsPath back to the caller's own network namespace, renamed to
// hostName. It is left down, without addresses: the kernel drops them on
// the way. ErrNoLink means the interface is not in that namespace.
func ReturnLink(nsPath, inside, hostName string) error {
	h, ns, err := handleAt(nsPath)
	if err != nil {
		return fmt.Errorf("return %s: %w", inside, err)
	}
	defer ns.Close()
	defer h.Close()
	link, err := h.LinkByName(inside)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return fmt.Errorf("return %s from %s: %w", inside, nsPath, ErrNoLink)
	}
	if err != nil {
		return fmt.Errorf("return %s from %s: %w", inside, nsPath, err)
	}
	if err := h.LinkSetDown(link); err != nil {
		return fmt.Errorf("return %s: set down: %w", inside, err)
	}
	if hostName != inside {
		if err := h.LinkSetName(link, hostName); err != nil {
			return fmt.Errorf("return %s: rename to %s: %w", inside, hostName, err)
		}
	}
	own, err := netns.Get()
	if err != nil {
		return fmt.Errorf("return %s: open own network namespace: %w", inside, err)
	}
	defer own.Close()
	if err := h.LinkSetNsFd(link, int(own)); err != nil {
		return fmt.Errorf("return %s as %s: %w", inside, hostName, err)
	}
	return nil
}

// handleAt opens a netlink handle inside the network namespace at nsPath.
func handleAt(nsPath string) (*netlink.Handle, netns.NsHandle, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, 0, fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, 0, fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	return h, ns, nil
}
