package vmm

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/lf-edge/moor/reaper"
)

// describe says how a child ended, for the run state.
func describe(name string, r reaper.Reaped) string {
	if r.Status.Signaled() {
		return fmt.Sprintf("%s killed by %v", name, r.Status.Signal())
	}
	return fmt.Sprintf("%s exited with status %d", name, r.Status.ExitStatus())
}

// selfRSSKiB is the anchor's resident memory (VmRSS), 0 when unknown.
func selfRSSKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
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
