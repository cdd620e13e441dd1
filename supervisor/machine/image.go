package machine

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/initramfs"
)

// ErrNotStatic is returned for an init binary that needs a dynamic
// loader: the initramfs has no libc.
var ErrNotStatic = errors.New("not a static executable")

// ContainersDir is where a machine's containers tree is, in its image
// and at boot (moor as PID 1 with no arguments supervises it).
const ContainersDir = "/containers"

// ImageOptions say what goes into the initramfs of a machine whose init
// is moor.
type ImageOptions struct {
	Init       string   // the moor binary, static: /init
	Containers string   // the containers tree: ContainersDir
	Modules    []string // kernel modules to load at boot, by name; their dependencies come with them
	ModuleDir  string   // where they are: /lib/modules/<release>
	Hostname   string   // /etc/hostname when set
}

// Image builds the initramfs: /init (moor), /dev/console, the mount
// points of the early mounts, the tree at ContainersDir and, when asked,
// the modules (decompressed) under /lib/modules/<release> with a
// modules.dep of their own, modules.builtin and ModulesFile listing them.
func Image(o ImageOptions) (*initramfs.Archive, error) {
	if err := checkStatic(o.Init); err != nil {
		return nil, err
	}
	a := initramfs.New()
	if err := a.CopyFile("/init", o.Init); err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	for _, d := range []string{"/dev", "/proc", "/sys", "/run", "/tmp", "/etc", "/root"} {
		if err := a.Dir(d, 0o755); err != nil {
			return nil, fmt.Errorf("build image: %w", err)
		}
	}
	if err := a.Device("/dev/console", 0o600, initramfs.CharDevice, 5, 1); err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	if o.Hostname != "" {
		if err := a.File("/etc/hostname", 0o644, []byte(o.Hostname+"\n")); err != nil {
			return nil, fmt.Errorf("build image: %w", err)
		}
	}
	if err := addTree(a, o.Containers, ContainersDir); err != nil {
		return nil, err
	}
	if len(o.Modules) > 0 {
		if err := addModules(a, o.ModuleDir, o.Modules); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// checkStatic fails for a file that is not an ELF executable without an
// interpreter.
func checkStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("check init %s: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("check init %s: %w (make build links moor statically)", bin, ErrNotStatic)
		}
	}
	return nil
}

// addTree adds the directory src at dst: directories, files, symbolic
// links and device nodes, owned by root, with their permission bits;
// anything else (a FIFO, a socket) is an error naming it.
func addTree(a *initramfs.Archive, src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("add containers tree %s: not a directory", src)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("add containers tree: %w", err)
		}
		rel, _ := filepath.Rel(src, p)
		to := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("add containers tree: %w", err)
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			err = a.Dir(to, mode.Perm())
		case mode.IsRegular():
			err = a.CopyFile(to, p)
		case mode&fs.ModeSymlink != 0:
			var target string
			if target, err = os.Readlink(p); err == nil {
				err = a.Symlink(to, target)
			}
		case mode&fs.ModeDevice != 0:
			st := info.Sys().(*syscall.Stat_t)
			kind := initramfs.BlockDevice
			if mode&fs.ModeCharDevice != 0 {
				kind = initramfs.CharDevice
			}
			err = a.Device(to, mode.Perm(), kind, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		default:
			err = fmt.Errorf("add containers tree: %s is a %v, not a directory, file, link or device", p, mode.Type())
		}
		return err
	})
}

// addModules adds the modules and what they need, a modules.dep of
// them, the kernel's modules.builtin and ModulesFile.
func addModules(a *initramfs.Archive, dir string, names []string) error {
	ms, err := initramfs.LoadModules(dir)
	if err != nil {
		return fmt.Errorf("add modules: %w", err)
	}
	files, err := ms.Resolve(names...)
	if err != nil {
		return fmt.Errorf("add modules: %w", err)
	}
	if _, err := a.AddModules(ms, names...); err != nil {
		return fmt.Errorf("add modules: %w", err)
	}
	dep, err := ModulesDep(ms, files)
	if err != nil {
		return err
	}
	base := path.Join("/lib/modules", ms.Version)
	if err := a.File(path.Join(base, "modules.dep"), 0o644, dep); err != nil {
		return fmt.Errorf("add modules: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		if err := a.File(path.Join(base, "modules.builtin"), 0o644, b); err != nil {
			return fmt.Errorf("add modules: %w", err)
		}
	}
	return a.File(ModulesFile, 0o644, []byte(strings.Join(names, "\n")+"\n"))
}

// ModulesDep writes depmod's modules.dep for the module files (as
// modules.dep names them) as they are in the image: decompressed, each
// with what it needs, nearest the kernel last.
func ModulesDep(ms *initramfs.ModuleSet, files []string) ([]byte, error) {
	base := path.Join("/lib/modules", ms.Version) + "/"
	inImage := func(rel string) string { return strings.TrimPrefix(ms.ModulePath(rel), base) }
	var b strings.Builder
	for _, rel := range files {
		order, err := ms.Resolve(initramfs.ModuleName(rel))
		if err != nil {
			return nil, fmt.Errorf("write modules.dep: %w", err)
		}
		if len(order) == 0 {
			continue // built in
		}
		deps := order[:len(order)-1] // load order, the module itself last
		slices.Reverse(deps)
		b.WriteString(inImage(rel) + ":")
		for _, d := range deps {
			b.WriteString(" " + inImage(d))
		}
		b.WriteString("\n")
	}
	return []byte(b.String()), nil
}
