package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/reaper"
)

// held is what the supervisor process costs while it holds some tasks.
type held struct {
	RSSKiB  int     `json:"rssKiB"`
	AnonKiB int     `json:"anonKiB"` // of RSS: anonymous (heap, stacks)
	FileKiB int     `json:"fileKiB"` // of RSS: mapped files (the binary)
	PssKiB  int     `json:"pssKiB"`
	Threads int     `json:"threads"`
	Extra   float64 `json:"extraProcsPerTask"` // processes per task beyond the task's own
}

// inprocResult is what the in-process mode reports to the worker.
type inprocResult struct {
	StartMS     map[mode]sample `json:"startMs"`
	Held        map[string]held `json:"held"`
	Start100S   float64         `json:"start100s"`
	Start100Thr int             `json:"start100Threads"`
	Delete100S  float64         `json:"delete100s"`
	// Profile is, per mode, one sample per step of profileSteps.
	Profile map[mode][]sample `json:"profile"`
}

// inproc is the in-process benchmark: a Supervisor embedded in this
// process, with this process's only reaper.
type inproc struct {
	sup    *lifecycle.Tasks
	rootfs string
	seq    int
}

func runInproc(args []string) error {
	fs := flag.NewFlagSet(modeInproc, flag.ContinueOnError)
	rootfs := fs.String("rootfs", "", "the busybox root")
	state := fs.String("state", "", "the state root")
	out := fs.String("out", "", "where to write the result (JSON)")
	warmup := fs.Int("warmup", 3, "untimed starts first")
	rounds := fs.Int("rounds", 30, "timed starts, in each mode")
	wpid := fs.Int("warmer-pid", 0, "the warmer's process")
	wa := fs.String("warmer-a", "", "the warmer's first cgroup")
	wb := fs.String("warmer-b", "", "the warmer's second cgroup")
	profile := fs.Int("profile", 10, "starts in each mode whose steps are timed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logrus.SetOutput(io.Discard) // libcontainer's log; the profile reads it through a hook
	rp := reaper.NewReaper()
	defer rp.Close()
	sup, err := lifecycle.New(lifecycle.Options{
		Root: *state, Namespace: "bench", Reaper: rp,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("new supervisor: %w", err)
	}
	b := &inproc{sup: sup, rootfs: *rootfs}
	ctx := context.Background()
	w := &warmer{pid: *wpid, dirs: [2]string{*wa, *wb}}
	res := inprocResult{Held: map[string]held{}, StartMS: map[mode]sample{}}
	for i := 0; i < *warmup+*rounds; i++ {
		for _, m := range modes {
			if err := w.settle(m); err != nil {
				return err
			}
			d, err := b.startLatency()
			if err != nil {
				return err
			}
			if i >= *warmup {
				res.StartMS[m] = append(res.StartMS[m], ms(d))
			}
		}
	}
	if res.Profile, err = b.profileStarts(w, *profile); err != nil {
		return err
	}
	if err := b.holding(ctx, res.Held); err != nil {
		return err
	}
	if res.Start100S, res.Delete100S, res.Start100Thr, err = b.concurrent(ctx, 100); err != nil {
		return err
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(*out, raw, 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

func (b *inproc) nextID(kind string) string {
	b.seq++
	return fmt.Sprintf("inproc-%s-%d", kind, b.seq)
}

// startLatency times Create+Start of a task until its process has run:
// the process is busybox echo, and the clock stops when its output arrives.
func (b *inproc) startLatency() (time.Duration, error) {
	start, running, err := b.start()
	return running.Sub(start), err
}

// start creates and starts a task whose process is busybox echo and returns
// when Create was called and when the output arrived; then it deletes the
// task.
func (b *inproc) start() (start, running time.Time, err error) {
	ctx := context.Background()
	r, w, err := os.Pipe()
	if err != nil {
		return start, running, fmt.Errorf("make pipe: %w", err)
	}
	defer r.Close()
	id := b.nextID("start")
	spec := taskSpec(b.rootfs, id, "/bin/echo", "running")
	start = time.Now()
	_, err = b.sup.Create(ctx, lifecycle.CreateOptions{ID: id, Bundle: b.rootfs, Spec: spec, IO: lifecycle.IO{Stdout: w}})
	w.Close()
	if err != nil {
		return start, running, fmt.Errorf("create task: %w", err)
	}
	if _, err := b.sup.Start(ctx, id); err != nil {
		_ = b.sup.Delete(ctx, id, true)
		return start, running, fmt.Errorf("start task: %w", err)
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	running = time.Now()
	if err != nil || line != "running\n" {
		_ = b.sup.Delete(ctx, id, true)
		return start, running, fmt.Errorf("read the task's output: %q: %v", line, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.sup.Wait(wctx, id); err != nil {
		return start, running, fmt.Errorf("wait for task: %w", err)
	}
	if err := b.sup.Delete(ctx, id, true); err != nil {
		return start, running, fmt.Errorf("delete task: %w", err)
	}
	return start, running, nil
}

// startSleeper creates and starts a task that sleeps.
func (b *inproc) startSleeper(ctx context.Context, id string) error {
	spec := taskSpec(b.rootfs, id, "/bin/sleep", "100000")
	if _, err := b.sup.Create(ctx, lifecycle.CreateOptions{ID: id, Bundle: b.rootfs, Spec: spec}); err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	if _, err := b.sup.Start(ctx, id); err != nil {
		_ = b.sup.Delete(ctx, id, true)
		return fmt.Errorf("start task: %w", err)
	}
	return nil
}

// holding starts sleeping tasks one by one and measures this process at
// 1, 10 and 100 of them; then deletes them all.
func (b *inproc) holding(ctx context.Context, out map[string]held) error {
	var ids []string
	defer func() {
		for _, id := range ids {
			_ = b.sup.Delete(context.Background(), id, true)
		}
	}()
	for _, n := range []int{1, 10, 100} {
		for len(ids) < n {
			id := b.nextID("held")
			if err := b.startSleeper(ctx, id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		time.Sleep(500 * time.Millisecond) // let the runtime settle before reading it
		h, err := measureSelf()
		if err != nil {
			return err
		}
		desc, err := descendants(os.Getpid())
		if err != nil {
			return err
		}
		h.Extra = float64(desc-n) / float64(n)
		out[strconv.Itoa(n)] = h
	}
	return nil
}

// concurrent starts n sleeping tasks at once and returns the wall time
// until all run, the wall time to delete them all at once, and this
// process's thread count after the starts.
func (b *inproc) concurrent(ctx context.Context, n int) (startS, deleteS float64, threads int, err error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.nextID("conc")
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range ids {
		wg.Go(func() { errs[i] = b.startSleeper(ctx, ids[i]) })
	}
	wg.Wait()
	startS = time.Since(t0).Seconds()
	if h, err := measureSelf(); err == nil {
		threads = h.Threads
	}
	t0 = time.Now()
	for i := range ids {
		if errs[i] == nil {
			wg.Go(func() { errs[i] = b.sup.Delete(context.Background(), ids[i], true) })
		}
	}
	wg.Wait()
	deleteS = time.Since(t0).Seconds()
	return startS, deleteS, threads, errors.Join(errs...)
}

// measureSelf reads this process's RSS, Pss and thread count.
func measureSelf() (held, error) {
	return measure(os.Getpid())
}

// measure reads a process's RSS, Pss and thread count from /proc.
func measure(pid int) (held, error) {
	var h held
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return h, fmt.Errorf("read status of %d: %w", pid, err)
	}
	h.RSSKiB = procField(string(status), "VmRSS:")
	h.AnonKiB = procField(string(status), "RssAnon:")
	h.FileKiB = procField(string(status), "RssFile:")
	h.Threads = procField(string(status), "Threads:")
	if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		h.PssKiB = procField(string(rollup), "Pss:")
	}
	return h, nil
}

// procField is the first number after key in a /proc key-value file.
func procField(text, key string) int {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

// descendants counts the live processes below pid.
func descendants(pid int) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		parent[p], _ = strconv.Atoi(f[1])
	}
	n := 0
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				n++
				break
			}
		}
	}
	return n, nil
}
