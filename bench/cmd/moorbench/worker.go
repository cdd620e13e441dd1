package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
)

// report is everything one run measured.
type report struct {
	Date     time.Time
	Machine  string
	Versions map[string]string
	Hybrid   bool
	Warm     int
	Rounds   int
	CLI      map[mode]map[string]*cliResult
	Inproc   inprocResult
	Anchor   anchorResult
	Ctr      ctrResult
	Trees    []treeResult   // by size, as treeSizes
	Init     *machineResult // moor as a machine's init
	Box      *boxResult     // EVE in a box
	Leaks    []string
}

func runWorker(args []string) (err error) {
	fs := flag.NewFlagSet(modeWorker, flag.ContinueOnError)
	moorBin := fs.String("moor", "bin/moor", "the moor binary under test")
	sameLib := fs.String("runc-same-lib", "", "a runc built from the libcontainer release moor links (scripts/bench.sh builds it)")
	rounds := fs.Int("rounds", 30, "measured rounds of each CLI benchmark")
	warmup := fs.Int("warmup", 3, "warm-up rounds, not kept")
	only := fs.String("only", "", "run only these phases (comma-separated: cli, inproc, anchor, ctr, tree20, tree100, machine); the table then lacks the others")
	profile := fs.Int("profile", 10, "in-process starts in each mode whose steps are timed")
	verbose := fs.Bool("v", false, "also print where the anchor's resident memory is")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bin, err := filepath.Abs(*moorBin)
	if err != nil {
		return fmt.Errorf("moor binary: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()

	rep := &report{Date: time.Now().UTC(), Machine: machine(), Warm: *warmup, Rounds: *rounds}
	if rep.Hybrid, err = leaveHybrid(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "moorbench-")
	if err != nil {
		return fmt.Errorf("make work dir: %w", err)
	}
	bundles, state := filepath.Join(tmp, "bundles"), filepath.Join(tmp, "state")
	// State roots on a tmpfs, as each runtime's default (/run/...) is; it is
	// private to this mount namespace and vanishes with it.
	if err := os.Mkdir(state, 0o700); err != nil {
		return fmt.Errorf("make state dir: %w", err)
	}
	if err := unix.Mount("tmpfs", state, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700,size=64m"); err != nil {
		return fmt.Errorf("mount state tmpfs: %w", err)
	}
	if err := buildRootfs(filepath.Join(tmp, "rootfs")); err != nil {
		return err
	}
	if err := makeCgroupParent(); err != nil {
		return err
	}
	rts, err := newRuntimes(bin, *sameLib, state)
	if err != nil {
		return err
	}
	w, stopWarmer, err := startWarmer()
	if err != nil {
		return err
	}
	defer func() {
		stopWarmer()
		for _, rt := range rts {
			rep.Leaks = append(rep.Leaks, cleanupRuntime(rt)...)
		}
		leaks, cerr := removeCgroupParent()
		for _, l := range leaks {
			rep.Leaks = append(rep.Leaks, "cgroup "+l)
		}
		if cerr == nil {
			cerr = unix.Unmount(state, unix.MNT_DETACH)
		}
		if cerr == nil {
			cerr = os.RemoveAll(tmp)
		}
		if err == nil && cerr != nil {
			err = fmt.Errorf("clean up: %w", cerr)
		}
		if err == nil && len(rep.Leaks) > 0 {
			err = fmt.Errorf("left behind (now removed): %s", strings.Join(rep.Leaks, ", "))
		}
	}()
	rep.Versions = versions(rts)

	want := func(p string) bool { return *only == "" || slices.Contains(strings.Split(*only, ","), p) }
	rep.CLI = map[mode]map[string]*cliResult{}
	for _, m := range modes {
		rep.CLI[m] = map[string]*cliResult{}
		for _, rt := range rts {
			rep.CLI[m][rt.Name] = &cliResult{Steps: map[string]sample{}}
		}
	}
	if want("cli") {
		phase("CLI: run /bin/true and create/start/kill/delete, cold and warm, %d rounds (+%d warm-up), interleaved", *rounds, *warmup)
		if rep.CLI, err = benchCLI(ctx, rts, w, bundles, *warmup, *rounds); err != nil {
			return err
		}
	}
	if want("inproc") {
		phase("in-process: supervisor library start latency, 1/10/100 tasks held, 100 concurrent starts")
		if rep.Inproc, err = benchInproc(ctx, tmp, w, *warmup, *rounds, *profile); err != nil {
			return err
		}
	}
	if want("anchor") {
		phase("hypervisor task: anchor with qemu paused (TCG)")
		if rep.Anchor, err = benchAnchor(ctx, rts[0], filepath.Join(tmp, "vm"), *verbose); err != nil {
			return err
		}
	}
	if want("ctr") {
		phase("containerd: ctr run --rm of /bin/true through moor and runc, %d rounds (+%d warm-up), interleaved", *rounds, *warmup)
		var leaks []string
		rep.Ctr, leaks, err = benchCtr(ctx, rts, filepath.Join(state, "containerd"), filepath.Join(tmp, "rootfs"), *warmup, *rounds)
		rep.Leaks = append(rep.Leaks, leaks...)
		if err != nil {
			return err
		}
	}
	for _, n := range treeSizes {
		if !want(fmt.Sprintf("tree%d", n)) {
			continue
		}
		phase("tree%d: %d services started by moor supervise, and by containerd with ctr run -d", n, n)
		res, leaks, err := benchTree(ctx, n, bin, tmp, state)
		rep.Leaks = append(rep.Leaks, leaks...)
		if err != nil {
			return err
		}
		rep.Trees = append(rep.Trees, res)
	}
	if want("machine") {
		phase("machine: moor as /init of a qemu TCG guest (Debian's kernel), boot to every service running")
		res, err := benchMachine(ctx, bin, filepath.Join(tmp, "machine"))
		if err != nil {
			return err
		}
		rep.Init = &res
	}
	if want("evebox") {
		phase("eve_box: EVE in a box, moor as PID 1 (qemu TCG): the EVE tree, moor-taskmgr as pillar, three user apps")
		res, err := benchEVEBox(ctx, bin, filepath.Join(tmp, "evebox"))
		if err != nil {
			return err
		}
		rep.Box = &res
	}
	rep.print(os.Stdout)
	return nil
}

// benchInproc runs the in-process benchmark in a child of its own, which
// is the only reaper of its tasks.
func benchInproc(ctx context.Context, tmp string, w *warmer, warmup, rounds, profile int) (inprocResult, error) {
	var res inprocResult
	self, err := os.Executable()
	if err != nil {
		return res, fmt.Errorf("find own binary: %w", err)
	}
	out := filepath.Join(tmp, "inproc.json")
	c := exec.CommandContext(ctx, self, modeInproc, "--rootfs", filepath.Join(tmp, "rootfs"),
		"--state", filepath.Join(tmp, "state", "inproc"), "--out", out,
		"--warmup", fmt.Sprint(warmup), "--rounds", fmt.Sprint(rounds), "--profile", fmt.Sprint(profile),
		"--warmer-pid", fmt.Sprint(w.pid), "--warmer-a", w.dirs[0], "--warmer-b", w.dirs[1])
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		return res, fmt.Errorf("in-process benchmark: %w", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return res, fmt.Errorf("read in-process result: %w", err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("decode in-process result: %w", err)
	}
	return res, nil
}

// startWarmer starts the process the warmer moves between cgroups, and
// returns the warmer and what stops and removes it all.
func startWarmer() (*warmer, func(), error) {
	hier, err := cgroup.Hierarchies()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("sleep", "1000000")
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start the warmer process: %w", err)
	}
	stopProc := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	w, err := newWarmer(hier, cmd.Process.Pid)
	if err != nil {
		stopProc()
		return nil, nil, err
	}
	return w, func() { stopProc(); w.remove() }, nil
}

func phase(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "moorbench: "+format+"\n", a...)
}

// versions asks each runtime for its version's first line.
func versions(rts []*ociRuntime) map[string]string {
	v := map[string]string{}
	for _, rt := range rts {
		out, err := exec.Command(rt.Bin, "--version").Output()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if err != nil {
			line = "unknown"
		}
		v[rt.Name] = line
	}
	return v
}

// machine describes this host: CPU model and count, memory, kernel.
func machine() string {
	model, cpus := "unknown CPU", 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			switch k = strings.TrimSpace(k); {
			case ok && k == "model name":
				model = strings.TrimSpace(v)
				cpus++
			}
		}
	}
	var mem int
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = procField(string(b), "MemTotal:")
	}
	var u unix.Utsname
	_ = unix.Uname(&u)
	return fmt.Sprintf("%s, %d CPUs, %.0f GiB, Linux %s", model, cpus, float64(mem)/(1<<20), unix.ByteSliceToString(u.Release[:]))
}
