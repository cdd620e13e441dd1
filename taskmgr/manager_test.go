package taskmgr_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/lifecycle/fake"
	"github.com/lf-edge/moor/procfs"
	"github.com/lf-edge/moor/reaper"
	"github.com/lf-edge/moor/taskmgr"
)

// rp is the test process's one reaper: the fake's anchors are its
// children, whichever Manager (or earlier one) made them.
var rp *reaper.Reaper

func TestMain(m *testing.M) {
	rp = reaper.NewReaper()
	code := m.Run()
	rp.Close()
	os.Exit(code)
}

const (
	deadline = 10 * time.Second
	// cgroupParent is never made: the fake runtime makes no cgroups.
	cgroupParent = "/moor-test/unit-taskmgr"
)

// rig is a Manager over the fake runtime (its apps are host processes),
// in temp directories, fed signals through Options.Signals.
type rig struct {
	opts taskmgr.Options
	// earlier reads the Manager's tasks, and makes those an earlier
	// Manager would have left: same root, namespace and runtime.
	earlier *lifecycle.Tasks
	sigs    chan os.Signal
	done    chan error
	running bool   // Run was called and has not returned
	log     string // the Manager's log file
}

func newRig(t *testing.T) *rig {
	t.Helper()
	base := t.TempDir()
	r := &rig{sigs: make(chan os.Signal, 1), done: make(chan error, 1), log: filepath.Join(base, "log")}
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	rt := fake.New()
	r.opts = taskmgr.Options{
		Apps: filepath.Join(base, "apps"), Root: filepath.Join(base, "state"), Status: filepath.Join(base, "status.json"),
		CgroupParent: cgroupParent, Runtime: rt, Reaper: rp, Signals: r.sigs,
		Logger: slog.New(slog.NewTextHandler(logf, nil)),
	}
	if err := os.MkdirAll(r.opts.Apps, 0o755); err != nil {
		t.Fatal(err)
	}
	earlier, err := lifecycle.New(lifecycle.Options{Root: r.opts.Root, Namespace: taskmgr.DefaultNamespace, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	r.earlier = earlier
	t.Cleanup(func() { r.cleanup(t) })
	return r
}

// addApp writes the app dir <apps>/<name>: an empty rootfs/, a
// config.json seed whose process is args (run on the host by the fake),
// and APP.json with app's settings, when given.
func (r *rig) addApp(t *testing.T, name string, app string, args ...string) string {
	t.Helper()
	dir := filepath.Join(r.opts.Apps, name)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := specconv.Example()
	s.Root = &specs.Root{Path: "rootfs", Readonly: true}
	s.Process.Terminal = false
	s.Process.Args = args
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "config.json"), string(b))
	if app != "" {
		write(t, filepath.Join(dir, taskmgr.AppFile), app)
	}
	return dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// limits is an APP.json with the minimum viable resources.
const limits = `{"memoryMiB": 32, "cpus": 1}`

// run starts the Manager.
func (r *rig) run(t *testing.T) {
	t.Helper()
	m, err := taskmgr.New(r.opts)
	if err != nil {
		t.Fatal(err)
	}
	r.running = true
	go func() { r.done <- m.Run(context.Background()) }()
}

// stop sends SIGTERM and waits for Run to return nil.
func (r *rig) stop(t *testing.T) {
	t.Helper()
	r.sigs <- unix.SIGTERM
	select {
	case err := <-r.done:
		r.running = false
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("the Manager did not return after SIGTERM")
	}
}

// cleanup fails the test for every task left, and removes it.
func (r *rig) cleanup(t *testing.T) {
	if r.running { // a test that failed before its SIGTERM
		r.sigs <- unix.SIGTERM
		<-r.done
	}
	states, err := r.earlier.List()
	if err != nil {
		t.Errorf("list tasks: %v", err)
	}
	for _, st := range states {
		t.Errorf("task %s left behind (%s)", st.ID, st.Status)
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		_ = r.earlier.Stop(ctx, st.ID, 0)
		_ = r.earlier.Delete(ctx, st.ID, true)
		cancel()
	}
	if t.Failed() {
		b, _ := os.ReadFile(r.log)
		t.Logf("manager log:\n%s", b)
	}
}

// waitStatus polls the status file until cond holds of it.
func (r *rig) waitStatus(t *testing.T, what string, cond func(map[string]taskmgr.AppStatus) bool) map[string]taskmgr.AppStatus {
	t.Helper()
	end := time.Now().Add(deadline)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		apps := map[string]taskmgr.AppStatus{}
		var st taskmgr.Status
		if b, err := os.ReadFile(r.opts.Status); err == nil {
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatalf("status file: %v\n%s", err, b)
			}
		}
		for _, a := range st.Apps {
			apps[a.Name] = a
		}
		if cond(apps) {
			return apps
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s; status: %+v", what, st.Apps)
		}
		time.Sleep(delay)
	}
}

// running holds when every named app runs.
func running(names ...string) func(map[string]taskmgr.AppStatus) bool {
	return func(apps map[string]taskmgr.AppStatus) bool {
		for _, n := range names {
			if a := apps[n]; a.Status != lifecycle.Running || a.PID <= 0 {
				return false
			}
		}
		return true
	}
}

// restarted holds when the app runs again under another PID than was.
func restarted(name string, was int) func(map[string]taskmgr.AppStatus) bool {
	return func(apps map[string]taskmgr.AppStatus) bool {
		a := apps[name]
		return a.Status == lifecycle.Running && a.PID > 0 && a.PID != was
	}
}

// alive reports whether pid runs (not exited, not a zombie).
func alive(pid int) bool {
	st, err := procfs.ReadStat(procfs.Root, pid)
	return err == nil && !st.Exited()
}

func kill(t *testing.T, pid int) {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGKILL); err != nil { // the fake's anchor: this process's own child
		t.Fatal(err)
	}
}

// checkShutDown checks that SIGTERM left no task, no process of pids and
// no status file.
func (r *rig) checkShutDown(t *testing.T, pids ...int) {
	t.Helper()
	states, err := r.earlier.List()
	if err != nil || len(states) != 0 {
		t.Errorf("after SIGTERM: tasks %v (%v), want none", states, err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("after SIGTERM: pid %d still runs", pid)
		}
	}
	if _, err := os.Stat(r.opts.Status); !os.IsNotExist(err) {
		t.Errorf("after SIGTERM: status file: %v, want it removed", err)
	}
}

func TestRestartsACrashedApp(t *testing.T) {
	r := newRig(t)
	r.addApp(t, "web", limits, "sleep", "600")
	r.addApp(t, "db", limits, "sleep", "600")
	r.run(t)
	apps := r.waitStatus(t, "both apps running", running("web", "db"))
	web, db := apps["web"], apps["db"]
	if web.Restarts != 0 || web.LastExit != nil {
		t.Fatalf("web before any crash: %+v", web)
	}
	kill(t, web.PID)
	apps = r.waitStatus(t, "web restarted", restarted("web", web.PID))
	got := apps["web"]
	if got.Restarts != 1 {
		t.Errorf("web restarts = %d, want 1", got.Restarts)
	}
	if ex := got.LastExit; ex == nil || ex.Code != 137 || ex.Signal != "SIGKILL" || ex.Reason != lifecycle.ExitSignal {
		t.Errorf("web last exit = %+v, want 137 by SIGKILL", ex)
	}
	if alive(web.PID) {
		t.Errorf("web's first anchor %d still runs", web.PID)
	}
	if apps["db"].PID != db.PID || apps["db"].Restarts != 0 {
		t.Errorf("db changed with web's crash: %+v, was %+v", apps["db"], db)
	}
	r.stop(t)
	r.checkShutDown(t, got.PID, db.PID)
}

func TestAdoptsWhatAnEarlierManagerLeft(t *testing.T) {
	r := newRig(t)
	r.addApp(t, "kept", limits, "sleep", "600")
	changed := r.addApp(t, "changed", limits, "sleep", "600")
	gone := filepath.Join(t.TempDir(), "gone")
	if err := os.Rename(r.addApp(t, "gone", limits, "sleep", "600"), gone); err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, dir := range []string{filepath.Join(r.opts.Apps, "kept"), changed, gone} {
		pids[filepath.Base(dir)] = r.earlierRun(t, dir)
	}
	write(t, filepath.Join(changed, taskmgr.AppFile), `{"memoryMiB": 64, "cpus": 1}`)
	r.run(t)
	apps := r.waitStatus(t, "kept and changed running", running("kept", "changed"))
	if got := apps["kept"]; got.PID != pids["kept"] || got.Restarts != 0 {
		t.Errorf("kept = %+v, want adopted: pid %d, no restart", got, pids["kept"])
	}
	if got := apps["changed"]; got.PID == pids["changed"] {
		t.Errorf("changed kept its pid %d: its task was made from its old description", got.PID)
	}
	if _, ok := apps["gone"]; ok || alive(pids["gone"]) || alive(pids["changed"]) {
		t.Errorf("the task of gone (%v) or the old one of changed (%v) still runs; status %+v", alive(pids["gone"]), alive(pids["changed"]), apps)
	}
	if _, err := r.earlier.State("gone"); err == nil {
		t.Errorf("the task of gone, whose description is gone, was not deleted")
	}
	kill(t, pids["kept"]) // an adopted app: watched by pidfd, not reaped by this Manager
	apps = r.waitStatus(t, "kept restarted", restarted("kept", pids["kept"]))
	if got := apps["kept"]; got.Restarts != 1 || got.LastExit == nil || got.LastExit.Reason != lifecycle.ExitUnknown {
		t.Errorf("kept after its crash = %+v (exit %+v), want restarts 1 and an unknown exit", got, got.LastExit)
	}
	r.stop(t)
	r.checkShutDown(t, apps["kept"].PID, apps["changed"].PID)
}

// earlierRun creates and starts the task of the app dir as an earlier
// Manager did, and returns its anchor's PID.
func (r *rig) earlierRun(t *testing.T, dir string) int {
	t.Helper()
	a, err := taskmgr.ReadApp(dir, cgroupParent)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.earlier.Create(ctx, lifecycle.CreateOptions{ID: a.Name, Bundle: a.Dir, Spec: a.Spec}); err != nil {
		t.Fatal(err)
	}
	rec, err := r.earlier.Start(ctx, a.Name)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Anchor.PID
}

func TestBadAppsAreReported(t *testing.T) {
	r := newRig(t)
	r.addApp(t, "good", limits, "sleep", "600")
	r.addApp(t, "zero", `{"memoryMiB": 0, "cpus": 1}`, "sleep", "600")
	r.addApp(t, "nolimits", "", "sleep", "600")
	r.addApp(t, "typo", `{"memoryMB": 32}`, "sleep", "600")
	r.run(t)
	apps := r.waitStatus(t, "good running", running("good"))
	for _, name := range []string{"zero", "nolimits", "typo"} {
		if a := apps[name]; a.Error == "" || a.Status != lifecycle.Stopped || a.PID != 0 {
			t.Errorf("%s = %+v, want stopped with its error", name, a)
		}
	}
	if states, _ := r.earlier.List(); len(states) != 1 {
		t.Errorf("tasks %v, want good's alone", states)
	}
	r.stop(t)
	r.checkShutDown(t, apps["good"].PID)
}

func TestNewRefuses(t *testing.T) {
	for _, parent := range []string{"", "eve/apps", "/", "/eve/../apps"} {
		_, err := taskmgr.New(taskmgr.Options{Apps: "apps", CgroupParent: parent, Reaper: rp})
		if err == nil {
			t.Errorf("cgroup parent %q accepted", parent)
		}
	}
	if _, err := taskmgr.New(taskmgr.Options{Apps: "apps", CgroupParent: "/eve/apps"}); err == nil {
		t.Errorf("no reaper accepted")
	}
}

// TestVMDescribedApps: an app with a VM description of mode nohyper runs
// as a container task with the VM's memory and vCPUs as its limits; one of
// another mode is reported, not run.
func TestVMDescribedApps(t *testing.T) {
	r := newRig(t)
	vmDir := r.addApp(t, "vm", limits, "sleep", "100")
	write(t, filepath.Join(vmDir, taskmgr.VMFile), `{"name": "vm", "mode": "nohyper", "memoryMiB": 48, "vcpus": 2}`)
	hvmDir := r.addApp(t, "hvm", limits, "sleep", "100")
	write(t, filepath.Join(hvmDir, taskmgr.VMFile), `{"name": "hvm", "memoryMiB": 48}`)
	apps, bad, err := taskmgr.ReadApps(r.opts.Apps, "/eve/apps")
	if err != nil {
		t.Fatal(err)
	}
	if err := bad["hvm"]; err == nil || !strings.Contains(err.Error(), "nohyper") {
		t.Fatalf("a VM of mode hvm: %v, want it refused naming nohyper", err)
	}
	vm := apps["vm"]
	if vm == nil {
		t.Fatalf("the nohyper app was not read: %v", bad["vm"])
	}
	res := vm.Spec.Linux.Resources
	if *res.Memory.Limit != 48<<20 || *res.CPU.Quota != 200000 || *res.CPU.Period != 100000 || vm.Spec.Linux.CgroupsPath != "/eve/apps/vm" {
		t.Fatalf("nohyper app: memory %d, quota %d/%d, cgroup %s; want 48 MiB, 2 CPUs, /eve/apps/vm",
			*res.Memory.Limit, *res.CPU.Quota, *res.CPU.Period, vm.Spec.Linux.CgroupsPath)
	}
}

// TestStatusDirMade: the status file's directory is made when missing.
func TestStatusDirMade(t *testing.T) {
	r := newRig(t)
	r.opts.Status = filepath.Join(t.TempDir(), "made", "status.json")
	r.addApp(t, "one", limits, "sleep", "100")
	r.run(t)
	r.waitStatus(t, "one running", running("one"))
}

// TestNewSweepsStatus: the temporary file a killed manager left beside
// its status file is removed by the next one.
func TestNewSweepsStatus(t *testing.T) {
	status := filepath.Join(t.TempDir(), "status.json")
	stale := filepath.Join(filepath.Dir(status), ".status.json.4242")
	if err := os.WriteFile(stale, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := taskmgr.New(taskmgr.Options{Apps: "apps", CgroupParent: "/eve/apps", Reaper: rp, Status: status}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the killed manager's temporary file is still there (%v)", err)
	}
}
