package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lf-edge/moor/atomicfile"
)

// Journal is what a supervisor keeps of its own across its restarts, in
// <root>/supervise-<namespace>.json beside the tasks' records: the boot in
// which it ran the onboot tasks and which of them it started, and the
// services whose create failed, with their last error. Restart counts and
// backoff of services that have a task come back from the tasks' records;
// the journal holds only what no record can: the counts of a service that
// has no task (being restarted, or never made), and the fact that onboot ran.
type Journal struct {
	// BootID is the kernel's boot_id of the boot the onboot tasks ran in.
	BootID string `json:"bootID"`
	// Onboot lists the onboot tasks started in that boot, in order; each is
	// noted before its create, so that a supervisor killed during onboot never
	// runs one twice.
	Onboot []string `json:"onboot,omitempty"`
	// OnbootEnded lists those of Onboot that ran, each noted before its
	// task is removed: one of Onboot that is not here and has
	// no task was never started (its supervisor was killed before the
	// create ended), and runs.
	OnbootEnded []string `json:"onbootEnded,omitempty"`
	// OnbootDone: every onboot task ran to its end in that boot.
	OnbootDone bool `json:"onbootDone,omitempty"`
	// Untasked holds the services that have no task: one being restarted
	// (its old task deleted, the new one not made yet) and one whose create
	// or start failed.
	Untasked map[string]Untasked `json:"untasked,omitempty"`
}

// Untasked is a service without a task: the counts its next start
// carries and, when its create or start failed, the error.
type Untasked struct {
	Restarts int       `json:"restarts"`
	Failures int       `json:"failures"`
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

// JournalPath is the journal of namespace's supervisor under root.
func JournalPath(root, namespace string) string {
	return filepath.Join(root, "supervise-"+namespace+".json")
}

// ReadJournal reads namespace's journal under root; a missing one is an
// empty journal.
func ReadJournal(root, namespace string) (*Journal, error) {
	b, err := os.ReadFile(JournalPath(root, namespace))
	if errors.Is(err, fs.ErrNotExist) {
		return &Journal{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read supervisor journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("read supervisor journal %s: %w", JournalPath(root, namespace), err)
	}
	return &j, nil
}

func (j *Journal) write(root, namespace string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("write supervisor journal: %w", err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("write supervisor journal: %w", err)
	}
	if err := atomicfile.Write(JournalPath(root, namespace), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write supervisor journal: %w", err)
	}
	return nil
}

// ranOnboot reports whether onboot task id was started in boot.
func (j *Journal) ranOnboot(boot, id string) bool {
	return boot != "" && j.BootID == boot && (j.OnbootDone || slices.Contains(j.Onboot, id))
}

// readBootID returns the kernel's ID of this boot from procfs; empty when
// it cannot be read (onboot then runs, as on a new boot).
func readBootID(procRoot string) string {
	b, err := os.ReadFile(filepath.Join(procRoot, "sys/kernel/random/boot_id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
