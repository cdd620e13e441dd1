package vmbundle

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/lifecycle"
)

// fakeMoor makes a moor binary (an empty file) in a directory of its own,
// with a moor-anchor beside it when withAnchor.
func fakeMoor(t *testing.T, withAnchor bool) string {
	t.Helper()
	dir := t.TempDir()
	moor := filepath.Join(dir, "moor")
	files := []string{moor}
	if withAnchor {
		files = append(files, filepath.Join(dir, AnchorBinary))
	}
	for _, f := range files {
		if err := os.WriteFile(f, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return moor
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readSpec(t *testing.T, bundle string) *specs.Spec {
	t.Helper()
	s, err := lifecycle.LoadSpec(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func vm(t *testing.T, desc string) *devicemodel.VM {
	t.Helper()
	v, err := devicemodel.Parse(strings.NewReader(desc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWriteHostRoot(t *testing.T) {
	moor := fakeMoor(t, true)
	dir := t.TempDir()
	if err := Write(vm(t, `{"name":"demo","memoryMiB":128}`), Options{Dir: dir, Moor: moor}); err != nil {
		t.Fatal(err)
	}
	s := readSpec(t, dir)
	if s.Root.Path != "/" || !s.Root.Readonly {
		t.Errorf("root %+v, want the host's, read-only", s.Root)
	}
	if s.Annotations[devicemodel.AnnotationRunDir] != filepath.Join(dir, RunDir) {
		t.Errorf("run dir annotation %q, want %s", s.Annotations[devicemodel.AnnotationRunDir], filepath.Join(dir, RunDir))
	}
	if !anchorMounted(s, filepath.Join(filepath.Dir(moor), AnchorBinary)) {
		t.Errorf("the moor-anchor beside moor is not the task's anchor: %+v", s.Mounts)
	}
	if len(s.Hooks.Poststop) != 1 || s.Hooks.Poststop[0].Path != moor {
		t.Errorf("poststop hooks %+v, want moor's", s.Hooks.Poststop)
	}
	var inTask devicemodel.VM
	b, err := os.ReadFile(filepath.Join(dir, RunDir, devicemodel.VMFile))
	if err == nil {
		err = json.Unmarshal(b, &inTask)
	}
	if err != nil || inTask.Name != "demo" {
		t.Fatalf("the run directory's vm.json: %+v, %v", inTask, err)
	}
	if _, err := os.Stat(filepath.Join(dir, RunDir, devicemodel.VarsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a VM without firmwareVars got a variable store: %v", err)
	}

	// A second write refuses to replace the spec.
	err = Write(vm(t, `{"name":"demo","memoryMiB":128}`), Options{Dir: dir, Moor: moor})
	if err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("Write over a bundle: %v, want an error", err)
	}
}

func anchorMounted(s *specs.Spec, src string) bool {
	for _, m := range s.Mounts {
		if m.Source == src {
			return true
		}
	}
	return false
}

func TestWriteLoaderXen(t *testing.T) {
	loader := t.TempDir()
	writeFile(t, filepath.Join(loader, SpecFile), `{"ociVersion":"1.0.2","root":{"path":"rootfs"}}`)
	writeFile(t, filepath.Join(loader, "rootfs", "usr", "sbin", "xl"), "")
	dir := t.TempDir()
	err := Write(vm(t, `{"name":"x1","hypervisor":"xen","memoryMiB":64}`), Options{Dir: dir, Moor: fakeMoor(t, false), Loader: loader})
	if err != nil {
		t.Fatal(err)
	}
	s := readSpec(t, dir)
	if s.Root.Path != filepath.Join(loader, "rootfs") {
		t.Errorf("root %s, want the loader's, made absolute", s.Root.Path)
	}
	if xl := s.Annotations[devicemodel.AnnotationXL]; xl != filepath.Join(loader, "rootfs", "usr", "sbin", "xl") {
		t.Errorf("xl annotation %q, want the loader's xl", xl)
	}
}

func TestLoadLoader(t *testing.T) {
	for body, want := range map[string]string{
		`{"ociVersion":"1.0.2"}`: "root.path is not set",
		`{"ociVersion":`:         "read spec",
	} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, SpecFile), body)
		if _, err := LoadLoader(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadLoader(%s) = %v, want an error saying %q", body, err, want)
		}
	}
	if _, err := LoadLoader(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadLoader of a directory without a spec: %v, want ErrNotExist", err)
	}
}

func TestFindAnchor(t *testing.T) {
	with, without := fakeMoor(t, true), fakeMoor(t, false)
	if a, err := FindAnchor("", with); err != nil || a != filepath.Join(filepath.Dir(with), AnchorBinary) {
		t.Errorf("FindAnchor beside moor = %q, %v", a, err)
	}
	if a, err := FindAnchor("", without); err != nil || a != "" {
		t.Errorf("FindAnchor with none beside moor = %q, %v, want moor itself (empty)", a, err)
	}
	link := filepath.Join(t.TempDir(), "anchor-link")
	if err := os.Symlink(filepath.Join(filepath.Dir(with), AnchorBinary), link); err != nil {
		t.Fatal(err)
	}
	if a, err := FindAnchor(link, without); err != nil || a != filepath.Join(filepath.Dir(with), AnchorBinary) {
		t.Errorf("FindAnchor(%s) = %q, %v, want the link's target", link, a, err)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	if _, err := FindAnchor(missing, with); err == nil || !strings.Contains(err.Error(), "find anchor") {
		t.Errorf("FindAnchor of a missing file = %v, want an error", err)
	}
	if _, err := FindAnchor(t.TempDir(), with); err == nil || !strings.Contains(err.Error(), "is not a file") {
		t.Errorf("FindAnchor of a directory = %v, want an error", err)
	}
}

const fml = `{"name":"uefi","memoryMiB":128,"mode":"fml","firmware":"/ovmf/CODE.fd","firmwareVars":%q}`

// TestWriteVarsOnce: the variable store is copied from its template once,
// mode 0600, and a second write keeps what is there.
func TestWriteVarsOnce(t *testing.T) {
	template := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	writeFile(t, template, "template")
	dir, moor := t.TempDir(), fakeMoor(t, false)
	desc := strings.Replace(fml, "%q", `"`+template+`"`, 1)
	if err := Write(vm(t, desc), Options{Dir: dir, Moor: moor}); err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(dir, RunDir, devicemodel.VarsFile)
	if fi, err := os.Stat(vars); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("variable store: %v, %v, want mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(vars); string(b) != "template" {
		t.Fatalf("variable store holds %q, want the template's content", b)
	}
	if err := os.WriteFile(vars, []byte("written by the firmware"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, SpecFile)); err != nil {
		t.Fatal(err)
	}
	if err := Write(vm(t, desc), Options{Dir: dir, Moor: moor}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(vars); string(b) != "written by the firmware" {
		t.Fatalf("a second write replaced the variable store: %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, RunDir, ".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestWriteVarsTemplateBad(t *testing.T) {
	for name, template := range map[string]string{"missing": filepath.Join(t.TempDir(), "gone.fd"), "directory": t.TempDir()} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			desc := strings.Replace(fml, "%q", `"`+template+`"`, 1)
			err := Write(vm(t, desc), Options{Dir: dir, Moor: fakeMoor(t, false)})
			if err == nil || !strings.Contains(err.Error(), "firmwareVars") || !strings.Contains(err.Error(), template) {
				t.Fatalf("Write with a bad template: %v, want an error naming firmwareVars and %s", err, template)
			}
			for _, f := range []string{SpecFile, filepath.Join(RunDir, devicemodel.VarsFile)} {
				if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("Write failed but made %s", f)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(dir, RunDir, ".*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}
