package main

import (
	"context"
	"encoding/json"
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

// Names of the runtimes beside moor: Debian's runc, runc built from the
// libcontainer release moor links (the same floor of system calls: Debian's
// runc 1.1 makes about half of 1.5's for one run), and crun.
const (
	nameRunc        = "runc"
	nameRuncSameLib = "runc_same_lib"
	nameCrun        = "crun"
)

func newRuntimes(moorBin, sameLibBin, stateDir string) ([]*ociRuntime, error) {
	if sameLibBin == "" {
		return nil, errors.New("no --runc-same-lib: scripts/bench.sh builds it")
	}
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
		{Name: nameRunc, Bin: runc, Global: []string{"--root", filepath.Join(stateDir, nameRunc)}},
		{Name: nameRuncSameLib, Bin: sameLibBin, Global: []string{"--root", filepath.Join(stateDir, nameRuncSameLib)}},
		{Name: nameCrun, Bin: crun, Global: []string{"--root", filepath.Join(stateDir, nameCrun), "--cgroup-manager=cgroupfs"}},
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

// cycle creates, starts, kills and deletes a task and times each call,
// each after settle. Between kill and delete it waits, untimed, until the
// runtime says the task stopped, and deletes without --force, as
// containerd's shim does once it saw the exit: runc 1.2 and later sleep
// 100 ms in every delete --force.
func cycle(ctx context.Context, rt *ociRuntime, settle func() error, bundle, id string) (map[string]time.Duration, error) {
	steps := map[string]time.Duration{}
	calls := [][]string{
		{"create", "--bundle", bundle, id},
		{"start", id},
		{"kill", id, "KILL"},
		{"delete", id},
	}
	for i, args := range calls {
		if lifecycleSteps[i] == "delete" {
			if err := waitStopped(ctx, rt, id); err != nil {
				_, _ = rt.cmd(context.WithoutCancel(ctx), "delete", "--force", id)
				return nil, err
			}
		}
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

// waitStopped polls the runtime's state of a task until it is stopped.
func waitStopped(ctx context.Context, rt *ociRuntime, id string) error {
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		out, err := rt.output(ctx, "state", id)
		if err != nil {
			return err
		}
		var st struct{ Status string }
		if err := json.Unmarshal(out, &st); err != nil {
			return fmt.Errorf("%s state %s: %w", rt.Name, id, err)
		}
		if st.Status == "stopped" {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %s still %s 10s after kill", rt.Name, id, st.Status)
		}
		time.Sleep(delay)
	}
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
