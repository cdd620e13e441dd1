package nsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoTimeNS means the kernel has no time namespaces (Linux 5.6 and
// CONFIG_TIME_NS are needed).
var ErrNoTimeNS = errors.New("time namespaces are not available on this kernel")

// TimeNSSupported reports whether this kernel has time namespaces whose
// offsets can be set, from procRoot (normally /proc): the file a new time
// namespace's clock offsets are written to must exist.
func TimeNSSupported(procRoot string) error {
	p := filepath.Join(procRoot, "self", "timens_offsets")
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("%w: %w", ErrNoTimeNS, err)
	}
	return nil
}
