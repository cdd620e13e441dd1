package machine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// newRootDir is where the tmpfs that becomes the root is mounted while
// the initramfs is copied into it.
const newRootDir = "/.moor-root"

// OnRootfs reports whether / is the kernel's rootfs, the initial RAM file
// system: pivot_root(2) cannot leave it, so tasks could not start.
func OnRootfs(mounts []*mountinfo.Info) bool {
	var top *mountinfo.Info
	for _, mi := range mounts {
		if mi.Mountpoint == "/" {
			top = mi // the last one mounted on / is the one seen
		}
	}
	return top != nil && top.FSType == "rootfs"
}

// readMounts parses the machine's /proc/self/mountinfo.
func (m *machine) readMounts() ([]*mountinfo.Info, error) {
	f, err := os.Open(m.path("/proc/self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	ms, err := mountinfo.GetMountsFromReader(f, nil)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	return ms, nil
}

// switchRoot is the switch-root step. On the kernel's rootfs it does what
// switch_root(8) does, as linuxkit's init does: it copies the initramfs
// into a tmpfs, empties the rootfs to give its memory back, makes the
// tmpfs the root and executes moor again from there, which goes through
// boot anew and finds itself on a tmpfs. Elsewhere it does nothing.
func (m *machine) switchRoot() error {
	mounts, err := m.readMounts()
	if err != nil {
		return err
	}
	if !OnRootfs(mounts) {
		return nil
	}
	self, err := os.Readlink(m.path("/proc/self/exe"))
	if err != nil {
		return fmt.Errorf("switch root: %w", err)
	}
	newRoot := m.path(newRootDir)
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return fmt.Errorf("switch root: %w", err)
	}
	if err := m.sys.Mount("tmpfs", newRoot, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("switch root: %w", err)
	}
	if err := CopyTree(m.root, newRoot); err != nil {
		_ = m.sys.Unmount(newRoot, unix.MNT_DETACH)
		return fmt.Errorf("switch root: %w", err)
	}
	if err := m.sys.Unmount(m.path("/proc"), unix.MNT_DETACH); err != nil {
		return fmt.Errorf("switch root: %w", err)
	}
	if err := EmptyTree(m.root); err != nil {
		m.log.Warn("switch root: the old root is not empty", "err", err)
	}
	if err := m.sys.SwitchRoot(newRoot); err != nil {
		return err // the machine is in no state to go on: Boot powers off
	}
	m.log.Info("moved off the initramfs onto a tmpfs: starting again from there")
	return m.sys.Exec(self, os.Args, os.Environ())
}

// CopyTree copies the file system at src into dst, which must be a
// directory within it or elsewhere: directories, files, symbolic links,
// device nodes and FIFOs, with their modes and owners. What is mounted on
// src's subdirectories (another device) and dst itself are left out; the
// mount points are copied as empty directories.
func CopyTree(src, dst string) error {
	srcStat, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	rootDev := srcStat.Sys().(*syscall.Stat_t).Dev
	dstStat, err := os.Stat(dst)
	if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copy tree: %w", err)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("copy tree: %w", err)
		}
		if d.IsDir() && os.SameFile(fi, dstStat) {
			return fs.SkipDir
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		to := filepath.Join(dst, rel)
		if err := copyEntry(p, to, fi, st); err != nil {
			return fmt.Errorf("copy tree: %w", err)
		}
		if d.IsDir() && st.Dev != rootDev {
			return fs.SkipDir // a mount point: its content is another file system's
		}
		return nil
	})
}

// copyEntry makes one entry of a tree copy.
func copyEntry(from, to string, fi os.FileInfo, st *syscall.Stat_t) error {
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		if err := os.Mkdir(to, mode.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case mode.IsRegular():
		if err := copyFile(from, to, mode.Perm()); err != nil {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(from)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, to); err != nil {
			return err
		}
		return os.Lchown(to, int(st.Uid), int(st.Gid))
	case mode&(fs.ModeDevice|fs.ModeNamedPipe) != 0:
		if err := unix.Mknod(to, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("make node %s: %w", to, err)
		}
	default:
		return nil // sockets: nothing to copy
	}
	if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return os.Chmod(to, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

func copyFile(from, to string, perm fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// EmptyTree removes what dir holds on dir's own device, as switch_root(8)
// does with the rootfs; mount points and what is below them stay.
func EmptyTree(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("empty %s: %w", dir, err)
	}
	dev := fi.Sys().(*syscall.Stat_t).Dev
	var errs []error
	var walk func(d string)
	walk = func(d string) {
		entries, err := os.ReadDir(d)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, e := range entries {
			p := filepath.Join(d, e.Name())
			info, err := os.Lstat(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if info.Sys().(*syscall.Stat_t).Dev != dev {
				continue // a mount point
			}
			if info.IsDir() {
				walk(p)
			}
			if err := os.Remove(p); err != nil && !info.IsDir() {
				errs = append(errs, err)
			}
		}
	}
	walk(dir)
	return errors.Join(errs...)
}
