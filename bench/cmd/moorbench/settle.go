package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Each measured call starts from one of two states of the kernel's
// cgroup_threadgroup_rwsem, which every write to a v1 cgroup.procs (or
// tasks) file takes for writing. After about 20 ms without such a write the
// rwsem is idle and the next write waits for an RCU grace period (6-8 ms
// on this kind of machine); within the next ~10 ms further writes are
// nearly free. Every runtime writes cgroup.procs once per start, so without
// control a fast runtime whose calls follow each other closely would get
// the cheap path and a slower one the dear one. So every measured call is
// preceded by an idle pause ("cold": it pays the grace period, as a start
// on a quiet device does) or by the pause and then a write of our own
// ("warm": as when a manager starts tasks back to back).
type mode string

const (
	cold mode = "cold"
	warm mode = "warm"
)

var modes = []mode{cold, warm}

// idle is long enough for the rwsem to go back to idle.
const idle = 50 * time.Millisecond

// warmer moves a process of ours between two cgroups of /moor-bench to
// warm the rwsem up.
type warmer struct {
	pid  int
	dirs [2]string
	n    int
}

// newWarmer makes /moor-bench/warm-a and warm-b in the pids hierarchy (or
// the first one) for the process pid.
func newWarmer(hierarchies []string, pid int) (*warmer, error) {
	base := hierarchies[0]
	for _, h := range hierarchies {
		if filepath.Base(h) == "pids" {
			base = h
		}
	}
	w := &warmer{pid: pid}
	for i, n := range []string{"warm-a", "warm-b"} {
		w.dirs[i] = filepath.Join(base, cgroupParent, n)
		if err := os.Mkdir(w.dirs[i], 0o755); err != nil {
			return nil, fmt.Errorf("make cgroup %s: %w", w.dirs[i], err)
		}
	}
	return w, nil
}

// settle waits until the rwsem is idle and, for warm, warms it.
func (w *warmer) settle(m mode) error {
	time.Sleep(idle)
	if m != warm {
		return nil
	}
	w.n++
	f := filepath.Join(w.dirs[w.n%2], "cgroup.procs")
	if err := os.WriteFile(f, []byte(strconv.Itoa(w.pid)), 0o644); err != nil {
		return fmt.Errorf("warm the cgroup rwsem: %w", err)
	}
	return nil
}

// remove removes the two cgroups; the process must have exited.
func (w *warmer) remove() {
	for _, d := range w.dirs {
		_ = unix.Rmdir(d)
	}
}
