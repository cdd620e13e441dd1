package initramfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A module tree shaped like Debian's: 9p needs 9pnet, fscache and netfs;
// 9pnet_virtio needs 9pnet, virtio and virtio_ring.
const modulesDep = `kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio-pci-legacy.ko.gz:
`

// moduleTree writes modulesDep, modules.builtin and a file per module
// whose content is its name.
func moduleTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test")
	deps, err := ParseModulesDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	for p := range deps {
		content := []byte("module " + ModuleName(p))
		if strings.HasSuffix(p, ".gz") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(content)
			zw.Close()
			content = b.Bytes()
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"modules.dep": modulesDep, "modules.builtin": "kernel/drivers/block/virtio_blk.ko\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolveOrder(t *testing.T) {
	m, err := LoadModules(moduleTree(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Resolve("9p", "9pnet_virtio", "virtio-blk", "virtio_console")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/fs/netfs/netfs.ko", "kernel/fs/fscache/fscache.ko", "kernel/net/9p/9pnet.ko", "kernel/fs/9p/9p.ko",
		"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko", "kernel/net/9p/9pnet_virtio.ko",
		"kernel/drivers/char/virtio_console.ko",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("load order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := m.Resolve("no_such"); !errors.Is(err, ErrNoModule) {
		t.Errorf("Resolve(no_such) = %v, want ErrNoModule", err)
	}
}

func TestAddModulesDecompresses(t *testing.T) {
	m, err := LoadModules(moduleTree(t))
	if err != nil {
		t.Fatal(err)
	}
	a := New()
	paths, err := a.AddModules(m, "virtio_pci_legacy")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || paths[0] != "/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio-pci-legacy.ko" {
		t.Fatalf("paths %v", paths)
	}
	e := a.entries[a.index[strings.TrimPrefix(paths[0], "/")]]
	if string(e.data) != "module virtio_pci_legacy" {
		t.Errorf("module content %q, want it gunzipped", e.data)
	}
}

// TestDecompressExternal checks .xz and .zst with the host's own tools,
// as a Debian that ships compressed modules has them.
func TestDecompressExternal(t *testing.T) {
	for suffix, prog := range map[string]string{".xz": "xz", ".zst": "zstd"} {
		t.Run(prog, func(t *testing.T) {
			if _, err := exec.LookPath(prog); err != nil {
				t.Skipf("%s is not installed (a host with %s modules has it)", prog, suffix)
			}
			cmd := exec.Command(prog, "-c")
			cmd.Stdin = strings.NewReader("a module")
			packed, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decompress("x.ko"+suffix, packed)
			if err != nil || string(got) != "a module" {
				t.Fatalf("Decompress = %q, %v", got, err)
			}
			if _, err := Decompress("x.ko"+suffix, []byte("not packed")); err == nil {
				t.Error("garbage decompressed without an error")
			}
		})
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/net/9p/9pnet_virtio.ko":           "9pnet_virtio",
		"kernel/fs/9p/9p.ko.xz":                   "9p",
		"kernel/drivers/virtio/virtio-pci.ko.zst": "virtio_pci",
		"kernel/drivers/block/virtio_blk.ko":      "virtio_blk",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}
