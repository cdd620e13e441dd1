package guest

import (
	"errors"
	"fmt"
	securejoin "github.com/cyphar/filepath-securejoin"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mountFlags are the options that are flags of mount(2); the others are
// the file system's data.
var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "rw": 0, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV,
	"noexec": unix.MS_NOEXEC, "relatime": unix.MS_RELATIME, "strictatime": unix.MS_STRICTATIME,
	"noatime": unix.MS_NOATIME, "sync": unix.MS_SYNCHRONOUS, "bind": unix.MS_BIND,
	"rbind": unix.MS_BIND | unix.MS_REC,
}

// parseOptions splits mount(8) options into mount(2)'s flags and data.
func parseOptions(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			flags |= f
		} else {
			data = append(data, o)
		}
	}
	return flags, strings.Join(data, ",")
}

// ninepOptions are the 9p client's: virtio transport, 9P2000.L, 256 KiB
// messages.
const ninepOptions = "trans=virtio,version=9p2000.L,msize=262144"

// errMount marks a mount the app cannot do without.
var errMount = errors.New("mount")

// mount makes m below root, at its destination resolved inside root: a
// symlink of the app's tree is followed as the app would follow it,
// never out into the guest's own. A share or a bind that fails is an
// error wrapping errMount; a kernel file system that fails is returned as
// is, for the caller to log.
func (g *guest) mount(root string, m Mount) error {
	dest, err := resolveIn(root, m.Destination)
	if err == nil {
		err = os.MkdirAll(dest, 0o755)
	}
	if err != nil && !isDir(dest) {
		err = fmt.Errorf("make mount point %s: %w", m.Destination, err)
		if m.Type == MountType9p || m.Type == MountTypeBind {
			return fmt.Errorf("%w: %w", errMount, err)
		}
		return err
	}
	flags, data := parseOptions(m.Options)
	switch m.Type {
	case MountType9p:
		return g.mount9p(m.Source, dest, flags, data)
	case MountTypeBind:
		if err := g.sys.Mount(g.path(m.Source), dest, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("%w: bind %s on %s: %w", errMount, m.Source, m.Destination, err)
		}
		if flags&unix.MS_RDONLY != 0 {
			if err := g.sys.Mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|flags, ""); err != nil {
				return fmt.Errorf("%w: make %s read-only: %w", errMount, m.Destination, err)
			}
		}
		return nil
	}
	if err := g.sys.Mount(m.Source, dest, m.Type, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
	}
	return nil
}

// Where the guest keeps the layers of an overlaid root.
const (
	lowerDir   = "/lower" // the root share, read-only
	overlayDir = "/rw"    // a tmpfs: upper/ and work/
)

// mountRoot mounts the app's root share at AppRoot. A root the app writes
// (RootOverlay) is overlaid with a tmpfs. So is a read-only root that
// lacks a mount point of the app's (missingMountPoints): the guest makes
// them in the tmpfs, never on the host; then sealed says that AppRoot
// must be made read-only once the mounts are in place.
func (g *guest) mountRoot(cfg *Config) (sealed bool, err error) {
	root := Mount{Destination: AppRoot, Type: MountType9p, Source: cfg.Root.Source, Options: cfg.Root.Options}
	if cfg.RootOverlay {
		root.Destination, root.Options = lowerDir, append(root.Options, "ro")
		if err := g.mount(g.root, root); err != nil {
			return false, err
		}
		return false, g.overlayRoot()
	}
	if err := g.mount(g.root, root); err != nil {
		return false, err
	}
	missing := missingMountPoints(cfg, g.path(AppRoot))
	if len(missing) == 0 {
		return false, nil
	}
	logf("the read-only root lacks the mount points %s: overlaid with a tmpfs that holds them", strings.Join(missing, " "))
	if err := os.MkdirAll(g.path(lowerDir), 0o755); err != nil {
		return false, fmt.Errorf("%w: make %s: %w", errMount, lowerDir, err)
	}
	if err := g.sys.Mount(g.path(AppRoot), g.path(lowerDir), "", unix.MS_MOVE, ""); err != nil {
		return false, fmt.Errorf("%w: move the root to %s: %w", errMount, lowerDir, err)
	}
	return true, g.overlayRoot()
}

// overlayRoot mounts at AppRoot an overlay whose lower layer is the root
// share at lowerDir and whose upper layer is a tmpfs.
func (g *guest) overlayRoot() error {
	if err := g.mount(g.root, Mount{Destination: overlayDir, Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=755"}}); err != nil {
		return fmt.Errorf("%w: %w", errMount, err)
	}
	rw := g.path(overlayDir)
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(rw, d), 0o755); err != nil {
			return fmt.Errorf("%w: make overlay %s: %w", errMount, d, err)
		}
	}
	data := "lowerdir=" + g.path(lowerDir) + ",upperdir=" + rw + "/upper,workdir=" + rw + "/work"
	if err := os.MkdirAll(g.path(AppRoot), 0o755); err != nil {
		return fmt.Errorf("%w: make %s: %w", errMount, AppRoot, err)
	}
	if err := g.sys.Mount("overlay", g.path(AppRoot), "overlay", 0, data); err != nil {
		return fmt.Errorf("%w: overlay on the root: %w", errMount, err)
	}
	return nil
}

// sealRoot makes the mount at AppRoot read-only (its own mount only: the
// app's mounts below it keep theirs).
func (g *guest) sealRoot() error {
	if err := g.sys.Mount("", g.path(AppRoot), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("%w: make the root read-only: %w", errMount, err)
	}
	return nil
}

// missingMountPoints are the destinations of the app's mounts that its
// read-only root, mounted at root, lacks: those that resolve inside it to
// nothing. A destination below an earlier mount's is left out (the file
// system mounted there has it or makes it), and so is every one of a
// writable root, where the guest makes them as a container's runtime
// does.
func missingMountPoints(cfg *Config, root string) []string {
	if !cfg.ReadOnlyRoot() {
		return nil
	}
	var missing, mounted []string
	for _, m := range cfg.Mounts {
		dest := path.Clean("/" + m.Destination)
		if below(dest, mounted) {
			continue
		}
		mounted = append(mounted, dest)
		p, err := resolveIn(root, dest)
		if err == nil {
			_, err = os.Stat(p)
		}
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, dest)
		}
	}
	return missing
}

// resolveIn is p as the app sees it inside root, a path below root: each
// symlink on the way is resolved inside root, never above it (a missing
// part is kept as it is: a mount point to make). Too many links are
// ELOOP.
func resolveIn(root, p string) (string, error) {
	return securejoin.SecureJoin(root, p)
}

// below says p is one of dirs or lies below one of them.
func below(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// mount9p mounts the share tagged tag at dest.
func (g *guest) mount9p(tag, dest string, flags uintptr, data string) error {
	opts := ninepOptions
	if data != "" {
		opts += "," + data
	}
	if err := g.sys.Mount(tag, dest, "9p", flags, opts); err != nil {
		return fmt.Errorf("%w: share %s on %s: %w", errMount, tag, dest, err)
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// earlyMounts are the guest's own /dev, /proc and /sys.
func (g *guest) earlyMounts() error {
	for _, m := range []struct{ fstype, dir string }{
		{"devtmpfs", "/dev"}, {"proc", "/proc"}, {"sysfs", "/sys"},
	} {
		if err := os.MkdirAll(g.path(m.dir), 0o755); err != nil {
			return fmt.Errorf("make %s: %w", m.dir, err)
		}
		err := g.sys.Mount(m.fstype, g.path(m.dir), m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC, "")
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	return nil
}

// loadModules loads each module file; one that is loaded already (or
// built in) is fine.
func (g *guest) loadModules(paths []string) error {
	for _, p := range paths {
		f, err := os.Open(g.path(p))
		if err != nil {
			return fmt.Errorf("load module: %w", err)
		}
		err = g.sys.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load module %s: %w", filepath.Base(p), err)
		}
	}
	return nil
}
