package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// profileStep is one step of an in-process start: it ends when the debug
// message holding marker arrives (libcontainer's own, or its init's, which
// come through the init's log pipe and are timed on arrival).
type profileStep struct {
	Key, Name, marker string
}

// profileSteps are the steps of Create+Start, in order. The last ends when
// the task's output arrives.
var profileSteps = []profileStep{
	{"moor_prep", "moor: checks, root, state records; sealing the binary", "runc exeseal:"},
	{"exec_init", "fork and exec of the init (the whole binary again)", "=> nsexec container setup"},
	{"cgroup", "the init's cgroup placement (cold: an RCU grace period)", "~> nsexec stage-0"},
	{"nsexec", "namespaces: nsexec stages 0 to 2", "~> nsexec stage-2"},
	{"go_runtime", "the init's Go runtime start", "child process in init()"},
	{"init_setup", "init: mounts, pivot_root, limits, seccomp, sync", "init: closing the pipe to signal completion"},
	{"start_exec", "moor: record, Start, exec of the process, its output", ""},
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
		if st.marker == "" || !strings.Contains(e.Message, st.marker) {
			continue
		}
		if _, seen := c.at[st.Key]; !seen {
			c.at[st.Key] = now
		}
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
		if st.marker != "" {
			var ok bool
			if t, ok = c.at[st.Key]; !ok {
				return nil, fmt.Errorf("profile: no %q message from libcontainer", st.marker)
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
