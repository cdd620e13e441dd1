package machine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/initramfs"
)

// ModulesFile lists the kernel modules a machine loads at boot: one a
// line, a name and its parameters, # for comments (Debian's format).
// `moor initramfs --modules` writes it.
const ModulesFile = "/etc/modules"

// ModuleLine is one line of ModulesFile.
type ModuleLine struct {
	Name   string
	Params string // "opt=1 other=x", for this module only, not its dependencies
}

// ParseModules reads a modules file.
func ParseModules(r io.Reader) ([]ModuleLine, error) {
	var out []ModuleLine
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, params, _ := strings.Cut(line, " ")
		out = append(out, ModuleLine{Name: name, Params: strings.TrimSpace(params)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", ModulesFile, err)
	}
	return out, nil
}

// compressed reports whether a module file is stored compressed.
func compressed(path string) bool {
	for _, c := range []string{".gz", ".xz", ".zst"} {
		if strings.HasSuffix(path, c) {
			return true
		}
	}
	return false
}

// modules is the modules step: each module ModulesFile lists, after what
// it needs (modules.dep of the running kernel), once each. A module built
// in or loaded already is fine; one that fails is reported and the others
// still load.
func (m *machine) modules() error {
	f, err := os.Open(m.path(ModulesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load modules: %w", err)
	}
	list, err := ParseModules(f)
	f.Close()
	if err != nil || len(list) == 0 {
		return err
	}
	ms, err := initramfs.LoadModules(m.path(filepath.Join("/lib/modules", m.release)))
	if err != nil {
		return fmt.Errorf("load modules: %w", err)
	}
	var loaded []string
	done := map[string]bool{}
	var errs []error
	for _, l := range list {
		files, err := ms.Resolve(l.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i, rel := range files {
			if done[rel] {
				continue
			}
			done[rel] = true
			params := ""
			if i == len(files)-1 {
				params = l.Params
			}
			p := m.path(ms.ModulePath(rel)) // stored decompressed, as moor initramfs does
			if _, err := os.Stat(p); err != nil {
				p = filepath.Join(ms.Dir, rel)
			}
			if err := m.sys.LoadModule(p, params); err != nil && !errors.Is(err, unix.EEXIST) {
				errs = append(errs, err)
				continue
			}
			loaded = append(loaded, initramfs.ModuleName(rel))
		}
	}
	m.log.Info("kernel modules loaded", "modules", strings.Join(loaded, ","))
	return errors.Join(errs...)
}
