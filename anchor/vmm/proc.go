package vmm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/procfs"
	"github.com/lf-edge/moor/reaper"
)

// describe says how a child ended, for the run state.
func describe(name string, r reaper.Reaped) string {
	if r.Status.Signaled() {
		return fmt.Sprintf("%s killed by %s", name, unix.SignalName(r.Status.Signal()))
	}
	return fmt.Sprintf("%s exited with status %d", name, r.Status.ExitStatus())
}

// selfRSSKiB is the anchor's resident memory (VmRSS), 0 when unknown.
func selfRSSKiB() int64 {
	st, err := procfs.ReadStatus(procfs.Root, os.Getpid())
	if err != nil {
		return 0
	}
	return int64(st.RSSKiB)
}

// removeStale removes files an earlier run left behind.
func removeStale(paths ...string) error {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove stale %s: %w", p, err)
		}
	}
	return nil
}
