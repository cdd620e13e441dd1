package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// ErrEscape means a mount destination leads out of the task's root.
var ErrEscape = errors.New("mount destination leads out of the root")

// CheckMounts refuses a mount whose destination leads out of the task's
// root: a ".." in the destination, or a relative symlink on the way whose
// ".." climbs above the root. Absolute symlinks are fine: inside the task
// they mean the task's own root, and that is how the runtime resolves them
// (Debian's /var/run -> /run is the common case). Resolution is
// filepath-securejoin's, as the runtime's own; this only watches the
// symlinks it walks. Destinations that do not exist yet are fine: the
// runtime creates them inside the root. A root that does not exist is not
// checked.
func CheckMounts(root string, mounts []specs.Mount) error {
	real, err := filepath.EvalSymlinks(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check mounts: root: %w", err)
	}
	for i, m := range mounts {
		if err := checkDestination(real, m.Destination); err != nil {
			return fmt.Errorf("mounts[%d] (%s): %w", i, m.Destination, err)
		}
	}
	return nil
}

func checkDestination(root, dest string) error {
	if !within(root, filepath.Join(root, dest)) {
		return fmt.Errorf("%w: its \"..\" climbs above the root", ErrEscape)
	}
	v := &escapeWatch{root: root}
	if _, err := securejoin.SecureJoinVFS(root, dest, v); err != nil {
		return fmt.Errorf("resolve in root: %w", err)
	}
	if v.escape != "" {
		return fmt.Errorf("%w: symlink %s climbs above the root", ErrEscape, v.escape)
	}
	return nil
}

// escapeWatch is the file system securejoin resolves through: the host's,
// noting the first relative symlink whose target climbs above the root.
type escapeWatch struct {
	root   string
	escape string
}

func (w *escapeWatch) Lstat(name string) (os.FileInfo, error) { return os.Lstat(name) }

func (w *escapeWatch) Readlink(name string) (string, error) {
	target, err := os.Readlink(name)
	if err == nil && w.escape == "" && !filepath.IsAbs(target) && !within(w.root, filepath.Join(filepath.Dir(name), target)) {
		w.escape = filepath.Clean(name) + " -> " + target
	}
	return target, err
}

func within(root, p string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}
