package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ociRuntime is one OCI runtime CLI under test.
type ociRuntime struct {
	Name string
	Bin  string
	// Global flags: its own state root, and the cgroupfs driver.
	Global []string
}

func newRuntimes(moorBin, stateDir string) ([]*ociRuntime, error) {
	crun, err := exec.LookPath("crun")
	if err != nil {
		return nil, fmt.Errorf("find crun: %w", err)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, fmt.Errorf("find runc: %w", err)
	}
	rts := []*ociRuntime{
		{Name: "moor", Bin: moorBin, Global: []string{"--root", filepath.Join(stateDir, "moor")}},
		{Name: "runc", Bin: runc, Global: []string{"--root", filepath.Join(stateDir, "runc")}},
		{Name: "crun", Bin: crun, Global: []string{"--root", filepath.Join(stateDir, "crun"), "--cgroup-manager=cgroupfs"}},
	}
	for _, rt := range rts {
		if err := os.MkdirAll(rt.Global[1], 0o700); err != nil {
			return nil, fmt.Errorf("make state root: %w", err)
		}
	}
	return rts, nil
}

// cmd runs one CLI call, stdio on /dev/null, and returns its wall time.
func (rt *ociRuntime) cmd(ctx context.Context, args ...string) (time.Duration, error) {
	d, _, err := rt.call(ctx, false, args...)
	return d, err
}

// output runs one CLI call and returns its standard output.
func (rt *ociRuntime) output(ctx context.Context, args ...string) ([]byte, error) {
	_, out, err := rt.call(ctx, true, args...)
	return out, err
}

func (rt *ociRuntime) call(ctx context.Context, wantOut bool, args ...string) (time.Duration, []byte, error) {
	c := exec.CommandContext(ctx, rt.Bin, append(append([]string{}, rt.Global...), args...)...)
	var out strings.Builder
	if wantOut {
		c.Stdout = &out // only for calls that start no task
	}
	errf, err := os.CreateTemp("", "moorbench-err-")
	if err != nil {
		return 0, nil, err
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	c.Stderr = errf // a file, not a pipe: a task inherits it and may outlive the call
	t0 := time.Now()
	err = c.Run()
	d := time.Since(t0)
	if err != nil {
		b, _ := os.ReadFile(errf.Name())
		return d, nil, fmt.Errorf("%s %v: %w: %s", rt.Name, args, err, b)
	}
	return d, []byte(out.String()), nil
}

// cliResult is one runtime's CLI figures in one mode.
type cliResult struct {
	RunTrue   sample
	Lifecycle sample
	Steps     map[string]sample // create, start, kill, delete
}

// benchCLI runs, round after round, `run` of /bin/true and a create,
// start, kill, delete lifecycle of a sleeping task through every runtime,
// cold and warm (see mode), rotating the runtimes' order each round. The
// first warm-up rounds are not kept.
func benchCLI(ctx context.Context, rts []*ociRuntime, w *warmer, bundles string, warmup, rounds int) (map[mode]map[string]*cliResult, error) {
	res := map[mode]map[string]*cliResult{}
	for _, m := range modes {
		res[m] = map[string]*cliResult{}
		for _, rt := range rts {
			res[m][rt.Name] = &cliResult{Steps: map[string]sample{}}
		}
	}
	for _, rt := range rts {
		if err := writeBundle(filepath.Join(bundles, rt.Name+"-true"), taskSpec(rootfsOf(bundles), rt.Name+"-true", "/bin/true")); err != nil {
			return nil, err
		}
		if err := writeBundle(filepath.Join(bundles, rt.Name+"-sleep"), taskSpec(rootfsOf(bundles), rt.Name+"-sleep", "/bin/sleep", "1000")); err != nil {
			return nil, err
		}
	}
	for r := 0; r < warmup+rounds; r++ {
		for _, m := range modes {
			for i := range rts {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				rt := rts[(r+i)%len(rts)]
				id := fmt.Sprintf("%s-%s-%d", rt.Name, m, r)
				if err := w.settle(m); err != nil {
					return nil, err
				}
				d, err := rt.cmd(ctx, "run", "--bundle", filepath.Join(bundles, rt.Name+"-true"), id+"-true")
				if err != nil {
					return nil, err
				}
				steps, err := cycle(ctx, rt, func() error { return w.settle(m) }, filepath.Join(bundles, rt.Name+"-sleep"), id+"-sleep")
				if err != nil {
					return nil, err
				}
				if r < warmup {
					continue
				}
				cr := res[m][rt.Name]
				cr.RunTrue = append(cr.RunTrue, ms(d))
				var total time.Duration
				for _, st := range lifecycleSteps {
					total += steps[st]
					cr.Steps[st] = append(cr.Steps[st], ms(steps[st]))
				}
				cr.Lifecycle = append(cr.Lifecycle, ms(total))
			}
		}
	}
	return res, nil
}

var lifecycleSteps = []string{"create", "start", "kill", "delete"}

// cycle creates, starts, kills and deletes a task and times each call.
// Each call is timed after settle.
func cycle(ctx context.Context, rt *ociRuntime, settle func() error, bundle, id string) (map[string]time.Duration, error) {
	steps := map[string]time.Duration{}
	calls := [][]string{
		{"create", "--bundle", bundle, id},
		{"start", id},
		{"kill", id, "KILL"},
		{"delete", "--force", id},
	}
	for i, args := range calls {
		if err := settle(); err != nil {
			return nil, err
		}
		d, err := rt.cmd(ctx, args...)
		if err != nil {
			if i > 0 {
				_, _ = rt.cmd(context.WithoutCancel(ctx), "delete", "--force", id)
			}
			return nil, err
		}
		steps[lifecycleSteps[i]] = d
	}
	return steps, nil
}

// rootfsOf is where the shared rootfs lives beside the bundles.
func rootfsOf(bundles string) string { return filepath.Join(filepath.Dir(bundles), "rootfs") }

// cleanupRuntime deletes, by force, every task left in a runtime's state
// root, and reports them.
func cleanupRuntime(rt *ociRuntime) (left []string) {
	root := rt.Global[1]
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		ids := []string{e.Name()}
		if rt.Name == "moor" { // <root>/<namespace>/<id>
			ids = nil
			sub, _ := os.ReadDir(filepath.Join(root, e.Name()))
			for _, s := range sub {
				if s.IsDir() {
					ids = append(ids, s.Name())
				}
			}
		}
		for _, id := range ids {
			left = append(left, rt.Name+" "+id)
			if _, err := rt.cmd(context.Background(), "delete", "--force", id); err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintln(os.Stderr, "moorbench: cleanup:", err)
			}
		}
	}
	return left
}
