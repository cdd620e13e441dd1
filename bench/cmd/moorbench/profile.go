package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// profileStep is one step of an in-process start: it ends when a debug
// message holding one of its markers arrives (libcontainer's own, or its
// init's, which come through the init's log pipe and are timed on arrival).
type profileStep struct {
	Key, Name string
	markers   []string
}

// profileSteps are the steps of Create+Start, in order. The last ends when
// the task's output arrives.
var profileSteps = []profileStep{
	// libcontainer first checks whether its binary is sealed already.
	{"moor_prep", "moor: checks, root, state records", []string{"F_GET_SEALS on", "memfd seals"}},
	{"seal", "sealing the binary (an overlayfs, no copy)", []string{"runc exeseal:"}},
	{"exec_init", "fork and exec of the init (the whole binary again)", []string{"=> nsexec container setup"}},
	{"cgroup", "the init's cgroup placement (cold: an RCU grace period)", []string{"~> nsexec stage-0"}},
	{"nsexec", "namespaces: nsexec stages 0 to 2", []string{"~> nsexec stage-2"}},
	{"go_runtime", "the init's Go runtime start", []string{"child process in init()"}},
	{"init_setup", "init: mounts, pivot_root, limits, seccomp, sync", []string{"init: closing the pipe to signal completion"}},
	{"start_exec", "moor: record, Start, exec of the process, its output", nil},
}

// marks says whether msg ends the step.
func (st profileStep) marks(msg string) bool {
	for _, m := range st.markers {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// stepClock is a logrus hook that notes when each step's marker first
// arrives.
type stepClock struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (c *stepClock) Levels() []logrus.Level { return []logrus.Level{logrus.DebugLevel} }

func (c *stepClock) Fire(e *logrus.Entry) error {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range profileSteps {
		if _, seen := c.at[st.Key]; seen || !st.marks(e.Message) {
			continue
		}
		c.at[st.Key] = now
	}
	return nil
}

func (c *stepClock) reset() {
	c.mu.Lock()
	c.at = map[string]time.Time{}
	c.mu.Unlock()
}

// durations splits [start, end] at the steps' marks, in milliseconds.
func (c *stepClock) durations(start, end time.Time) ([]float64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]float64, len(profileSteps))
	prev := start
	for i, st := range profileSteps {
		t := end
		if len(st.markers) > 0 {
			var ok bool
			if t, ok = c.at[st.Key]; !ok {
				return nil, fmt.Errorf("profile: no %q message from libcontainer", st.markers)
			}
		}
		out[i] = ms(t.Sub(prev))
		prev = t
	}
	return out, nil
}

// profileStarts times the steps of rounds in-process starts in each mode,
// with libcontainer (and so the init) logging at debug level.
func (b *inproc) profileStarts(w *warmer, rounds int) (map[mode][]sample, error) {
	clock := &stepClock{}
	level := logrus.GetLevel()
	logrus.SetLevel(logrus.DebugLevel)
	logrus.AddHook(clock)
	defer func() {
		logrus.SetLevel(level)
		logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
	}()
	out := map[mode][]sample{}
	for _, m := range modes {
		out[m] = make([]sample, len(profileSteps))
	}
	for range rounds {
		for _, m := range modes {
			if err := w.settle(m); err != nil {
				return nil, err
			}
			clock.reset()
			start, running, err := b.start()
			if err != nil {
				return nil, err
			}
			d, err := clock.durations(start, running)
			if err != nil {
				return nil, err
			}
			for i, v := range d {
				out[m][i] = append(out[m][i], v)
			}
		}
	}
	return out, nil
}
