package machine

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/initramfs"
)

// staticELF writes the smallest ELF executable header: no program
// headers, so no interpreter.
func staticELF(t *testing.T, dir string) string {
	t.Helper()
	return writeELF(t, filepath.Join(dir, "moor"), false)
}

// writeELF writes an ELF header and, for a dynamic one, a PT_INTERP
// program header.
func writeELF(t *testing.T, p string, dynamic bool) string {
	t.Helper()
	h := make([]byte, 64, 64+56)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], 2)    // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 0x3e) // x86-64
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64) // header size
	binary.LittleEndian.PutUint16(h[54:], 56) // program header size
	binary.LittleEndian.PutUint16(h[58:], 64) // section header size
	if dynamic {
		binary.LittleEndian.PutUint64(h[32:], 64) // program headers at 64
		binary.LittleEndian.PutUint16(h[56:], 1)  // one
		ph := make([]byte, 56)
		binary.LittleEndian.PutUint32(ph, 3) // PT_INTERP
		h = append(h, ph...)
	}
	if err := os.WriteFile(p, h, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// moduleDir writes a module directory: b needs a, c is built in.
func moduleDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test")
	writeFiles(t, dir, map[string]string{
		"modules.dep":     "kernel/b.ko: kernel/a.ko\nkernel/a.ko:\nkernel/other.ko:\n",
		"modules.builtin": "kernel/c.ko\n",
		"kernel/a.ko":     "a", "kernel/b.ko": "b", "kernel/other.ko": "o",
	})
	return dir
}

func TestImage(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeFiles(t, tree, map[string]string{"services/010-web/config.json": "{}", "rootfs/bin/busybox": "bb"})
	if err := os.Symlink("busybox", filepath.Join(tree, "rootfs/bin/sh")); err != nil {
		t.Fatal(err)
	}
	a, err := Image(ImageOptions{Init: staticELF(t, dir), Containers: tree, Modules: []string{"b", "c"}, ModuleDir: moduleDir(t), Hostname: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	names := a.Names()
	for _, want := range []string{"init", "dev/console", "proc", "sys", "run", "tmp", "etc/hostname",
		"containers/services/010-web/config.json", "containers/rootfs/bin/busybox", "containers/rootfs/bin/sh",
		"lib/modules/6.1.0-test/kernel/a.ko", "lib/modules/6.1.0-test/kernel/b.ko",
		"lib/modules/6.1.0-test/modules.dep", "lib/modules/6.1.0-test/modules.builtin", "etc/modules"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s is not in the image: %q", want, names)
		}
	}
	if slices.Contains(names, "lib/modules/6.1.0-test/kernel/other.ko") {
		t.Error("a module nobody needs is in the image")
	}
}

func TestModulesDep(t *testing.T) {
	dir := moduleDir(t)
	writeFiles(t, dir, map[string]string{"modules.dep": "kernel/b.ko.xz: kernel/a.ko.zst\nkernel/a.ko.zst:\n"})
	ms, err := initramfs.LoadModules(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ms.Resolve("b")
	if err != nil {
		t.Fatal(err)
	}
	dep, err := ModulesDep(ms, files)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\n"; string(dep) != want {
		t.Errorf("modules.dep:\n%s\nwant:\n%s", dep, want)
	}
}

func TestImageRefuses(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeFiles(t, tree, map[string]string{"services/a/config.json": "{}"})
	dynamic := writeELF(t, filepath.Join(dir, "dynamic"), true)
	if _, err := Image(ImageOptions{Init: dynamic, Containers: tree}); !errors.Is(err, ErrNotStatic) {
		t.Errorf("a dynamic init: %v, want ErrNotStatic", err)
	}
	if _, err := Image(ImageOptions{Init: staticELF(t, dir), Containers: filepath.Join(dir, "none")}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a missing tree: %v", err)
	}
	_, err := Image(ImageOptions{Init: staticELF(t, dir), Containers: tree, Modules: []string{"nosuch"}, ModuleDir: moduleDir(t)})
	if !errors.Is(err, initramfs.ErrNoModule) {
		t.Errorf("an unknown module: %v, want ErrNoModule", err)
	}
	fifo := filepath.Join(tree, "services/a/fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Image(ImageOptions{Init: staticELF(t, dir), Containers: tree}); err == nil || !strings.Contains(err.Error(), fifo) {
		t.Errorf("a FIFO in the tree: %v, want an error naming it", err)
	}
}
