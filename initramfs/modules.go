package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// ErrNoModule is returned for a module that is neither in modules.dep nor
// built into the kernel.
var ErrNoModule = errors.New("no such kernel module")

// ModuleSet is a kernel's module directory as modules.dep and
// modules.builtin describe it.
type ModuleSet struct {
	// Dir is the module directory on the host, /lib/modules/<version>.
	Dir string
	// Version is the kernel release, Dir's base name.
	Version string

	deps    map[string][]string // module path (relative to Dir) → its dependencies' paths
	byName  map[string]string   // module name → path
	builtin map[string]bool     // names of modules built into the kernel
}

// LoadModules reads dir/modules.dep and, when there, dir/modules.builtin.
func LoadModules(dir string) (*ModuleSet, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("load modules: %w", err)
	}
	defer f.Close()
	deps, err := ParseModulesDep(f)
	if err != nil {
		return nil, fmt.Errorf("load modules %s: %w", dir, err)
	}
	m := &ModuleSet{Dir: dir, Version: filepath.Base(dir), deps: deps, byName: map[string]string{}, builtin: map[string]bool{}}
	for p := range deps {
		m.byName[ModuleName(p)] = p
	}
	if b, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		defer b.Close()
		sc := bufio.NewScanner(b)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				m.builtin[ModuleName(line)] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("load modules %s: read modules.builtin: %w", dir, err)
		}
	}
	return m, nil
}

// ParseModulesDep parses depmod's modules.dep: one line a module, its
// path, a colon and the paths of the modules it needs, those first loaded
// last (depmod writes them in the reverse of load order).
func ParseModulesDep(r io.Reader) (map[string][]string, error) {
	deps := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(line, ":")
		if !ok || mod == "" {
			return nil, fmt.Errorf("parse modules.dep: line %d: want \"module: deps\"", n)
		}
		deps[mod] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse modules.dep: %w", err)
	}
	return deps, nil
}

// compressions are the suffixes of compressed modules.
var compressions = []string{".gz", ".xz", ".zst"}

// ModuleName is the name of the module at p ("kernel/net/9p/9pnet_virtio.ko.xz"
// → "9pnet_virtio"), with - written _ as the kernel does.
func ModuleName(p string) string {
	base := path.Base(p)
	for _, c := range compressions {
		base = strings.TrimSuffix(base, c)
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

// Resolve lists the module files that loading the named modules takes, in
// load order (each after what it needs), once each; modules built into
// the kernel are left out.
func (m *ModuleSet) Resolve(names ...string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(p string, stack []string) error
	visit = func(p string, stack []string) error {
		if seen[p] {
			return nil
		}
		for _, s := range stack {
			if s == p {
				return fmt.Errorf("resolve modules: dependency loop through %s", p)
			}
		}
		deps, ok := m.deps[p]
		if !ok {
			return fmt.Errorf("resolve modules: %w: %s is a dependency but not in modules.dep", ErrNoModule, p)
		}
		// modules.dep lists the dependencies nearest the kernel last.
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i], append(stack, p)); err != nil {
				return err
			}
		}
		seen[p] = true
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		name := strings.ReplaceAll(n, "-", "_")
		p, ok := m.byName[name]
		if !ok {
			if m.builtin[name] {
				continue
			}
			return nil, fmt.Errorf("resolve modules: %w: %s (in %s)", ErrNoModule, n, m.Dir)
		}
		if err := visit(p, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ModulePath is where AddModules puts the module file rel (a path of
// modules.dep) in the archive: under lib/modules/<version>, decompressed.
func (m *ModuleSet) ModulePath(rel string) string {
	for _, c := range compressions {
		rel = strings.TrimSuffix(rel, c)
	}
	return path.Join("/lib/modules", m.Version, rel)
}

// AddModules adds the named modules and what they need, decompressed, and
// returns their archive paths in load order.
func (a *Archive) AddModules(m *ModuleSet, names ...string) ([]string, error) {
	files, err := m.Resolve(names...)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(files))
	for _, rel := range files {
		raw, err := os.ReadFile(filepath.Join(m.Dir, rel))
		if err != nil {
			return nil, fmt.Errorf("add module: %w", err)
		}
		b, err := Decompress(rel, raw)
		if err != nil {
			return nil, fmt.Errorf("add module %s: %w", rel, err)
		}
		p := m.ModulePath(rel)
		if err := a.File(p, 0o644, b); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Decompress returns the content of a module file named name: as it is
// for .ko, gunzipped for .gz, and through xz -dc or zstd -dc (which must
// be installed where such modules are) for .xz and .zst.
func Decompress(name string, b []byte) ([]byte, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		return out, nil
	case strings.HasSuffix(name, ".xz"):
		return external(b, "xz", "-dc")
	case strings.HasSuffix(name, ".zst"):
		return external(b, "zstd", "-dc")
	}
	return b, nil
}

// external runs a decompressor with b on stdin.
func external(b []byte, prog string, args ...string) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(prog, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(b), &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("decompress with %s: %w: %s", prog, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
