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

// CheckMounts refuses a mount whose destination, resolved as the host
// would resolve it, is not where it resolves inside the root: a symlink on
// the way (absolute, or with ".." climbing above the root) would carry the
// mount out of the task's root. The in-root resolution is
// filepath-securejoin's. Destinations that do not exist yet are fine: the
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
	inside, err := securejoin.SecureJoin(root, dest)
	if err != nil {
		return fmt.Errorf("resolve in root: %w", err)
	}
	host, err := hostResolve(filepath.Join(root, dest))
	if err != nil {
		return fmt.Errorf("resolve on host: %w", err)
	}
	if host != inside || !within(root, host) {
		return fmt.Errorf("%w: it resolves to %s on the host, not %s", ErrEscape, host, inside)
	}
	return nil
}

// hostResolve resolves p's symlinks as the host does: the longest existing
// prefix is evaluated, the rest appended.
func hostResolve(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func within(root, p string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}
