package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/internal/containerd"
	"github.com/lf-edge/moor/internal/ociimage"
)

// busyboxImage is the reference of the busybox image made from busyboxRoot.
const busyboxImage = "docker.io/library/busybox:moor-test"

// ctrNamespace is the containerd namespace of TestContainerd's tasks.
const ctrNamespace = "moor-test"

// TestContainerd: containerd and ctr, Debian's 1.6 and 2.4.2 built from
// the Go module proxy (ctrReleases), drive moor as the runc of a private
// containerd (`ctr run --runc-binary`): a run with output, a detached task
// through exec, pause and resume, ps, metrics and SIGTERM, an OOM kill, an
// exit status; then nothing is left of any of them. Only the OOM task has
// a resource limit: containerd's default spec has none. Every task gets
// its own PID namespace (containerd's default spec) and a cgroup under
// cgroupParent (ctr --cgroup).
func TestContainerd(t *testing.T) {
	for _, rel := range ctrReleases {
		t.Run(rel.Name, func(t *testing.T) { testContainerd(t, rel) })
	}
}

func testContainerd(t *testing.T, rel ctrRelease) {
	c := newCtr(t, rel, nil)
	c.importImage(t, ctrNamespace, ociimage.Image{Name: busyboxImage, Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}})

	t.Run("run-rm-output", func(t *testing.T) {
		id := c.newID(t)
		r := c.run(t, []string{"--rm"}, id, "sh", "-c", "echo hello from $$")
		if r.Code != 0 || r.Stdout != "hello from 1\n" {
			t.Fatalf("ctr run --rm: %v, want %q (PID 1 of its own namespace)", r, "hello from 1\n")
		}
	})
	t.Run("detached", func(t *testing.T) { c.detachedTask(t) })
	t.Run("oom", func(t *testing.T) {
		id := c.newID(t)
		// containerd's shim watches a task's memory cgroup for OOM only
		// once the runtime's start has returned: a task that hits its limit
		// at once may beat the watch. So the task waits for a file the
		// test makes in its root once `ctr run -d` has returned, then execs
		// dd as PID 1, which needs a 64 MiB buffer under a 16 MiB limit.
		script := `test $$ = 1 || exit 1; while [ ! -e /oom ]; do sleep 0.05; done; exec dd if=/dev/zero of=/dev/null bs=64M count=1`
		if r := c.run(t, []string{"-d", "--memory-limit", strconv.Itoa(16 << 20)}, id, "sh", "-c", script); r.Code != 0 {
			t.Fatalf("ctr run -d: %v", r)
		}
		pid, _ := c.task(t, id)
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/root/oom", pid), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if st := c.events.exitStatus(t, id); st != 137 {
			t.Fatalf("exit event of %s: status %d, want 137 (SIGKILL by the OOM killer)", id, st)
		}
		c.events.wait(t, "/tasks/oom", id)
		c.mustCtr(t, "-n", ctrNamespace, "task", "delete", id)
		c.mustCtr(t, "-n", ctrNamespace, "container", "delete", id)
	})
	t.Run("exit-status", func(t *testing.T) {
		const script = "test $$ = 1 || exit 1; exit 3"
		if r := c.run(t, []string{"--rm"}, c.newID(t), "sh", "-c", script); r.Code != 3 {
			t.Fatalf("ctr run of sh -c 'exit 3': %v, want exit 3", r)
		}
		// The exit event of a task deleted as soon as it exits, as ctr
		// run's is, may be lost: containerd 2.x's shim drops events it
		// has not forwarded when it shuts down. A detached task's shim
		// lives until its delete.
		id := c.newID(t)
		if r := c.run(t, []string{"-d"}, id, "sh", "-c", script); r.Code != 0 {
			t.Fatalf("ctr run -d: %v", r)
		}
		if st := c.events.exitStatus(t, id); st != 3 {
			t.Fatalf("exit event of %s: status %d, want 3", id, st)
		}
		c.mustCtr(t, "-n", ctrNamespace, "task", "delete", id)
		c.mustCtr(t, "-n", ctrNamespace, "container", "delete", id)
	})
	c.checkNothingLeft(t, ctrNamespace)
}

// detachedTask runs a task with `ctr run -d` and walks it through task
// ls, exec, pause and resume, ps, metrics and SIGTERM to its removal.
func (c *ctrEnv) detachedTask(t *testing.T) {
	id := c.newID(t)
	// PID 1 of its namespace ignores TERM unless it handles it: this one
	// does, and exits 143 as a process killed by TERM would.
	script := `test $$ = 1 || exit 1; trap "exit 143" TERM; sleep 1000 & wait`
	if r := c.run(t, []string{"-d"}, id, "sh", "-c", script); r.Code != 0 {
		t.Fatalf("ctr run -d: %v", r)
	}
	pid, status := c.task(t, id)
	if status != "RUNNING" || !alive(pid) {
		t.Fatalf("task ls: %s pid %d (alive %v), want RUNNING and alive", status, pid, alive(pid))
	}
	checkCtrTaskIsolated(t, pid, cgroupParent+"/"+id)
	c.checkShim(t, ctrNamespace+"/"+id)

	out := c.mustCtr(t, "-n", ctrNamespace, "task", "exec", "--exec-id", id+"-exec", id, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline")
	if !strings.HasPrefix(out, "exec-ok\n") || !strings.Contains(out, "trap") {
		t.Fatalf("task exec printed %q, want exec-ok and the task's PID 1 (in its PID namespace)", out)
	}

	c.mustCtr(t, "-n", ctrNamespace, "task", "pause", id)
	if _, st := c.task(t, id); st != "PAUSED" || cgroupFile(t, "freezer", id, "freezer.state") != "FROZEN" {
		t.Fatalf("after pause: task %s, freezer %s", st, cgroupFile(t, "freezer", id, "freezer.state"))
	}
	c.mustCtr(t, "-n", ctrNamespace, "task", "resume", id)
	if _, st := c.task(t, id); st != "RUNNING" || cgroupFile(t, "freezer", id, "freezer.state") != "THAWED" {
		t.Fatalf("after resume: task %s, freezer %s", st, cgroupFile(t, "freezer", id, "freezer.state"))
	}

	ps := c.mustCtr(t, "-n", ctrNamespace, "task", "ps", id)
	if pids := psPIDs(ps); !slices.Contains(pids, pid) || len(pids) < 2 {
		t.Fatalf("task ps lists %v, want the init %d and its sleep:\n%s", pids, pid, ps)
	}
	m := ctrMetrics(c.mustCtr(t, "-n", ctrNamespace, "task", "metrics", id))
	if n, _ := strconv.Atoi(m["pids.current"]); n < 2 {
		t.Fatalf("task metrics: pids.current %q, want ≥ 2: %v", m["pids.current"], m)
	}
	if n, _ := strconv.Atoi(m["memory.usage_in_bytes"]); n <= 0 {
		t.Fatalf("task metrics: memory.usage_in_bytes %q, want > 0: %v", m["memory.usage_in_bytes"], m)
	}

	waitCatches(t, pid, unix.SIGTERM)
	c.mustCtr(t, "-n", ctrNamespace, "task", "kill", "--signal", "SIGTERM", id)
	if st := c.events.exitStatus(t, id); st != 143 {
		t.Fatalf("exit event after SIGTERM: status %d, want 143", st)
	}
	if _, st := c.task(t, id); st != "STOPPED" {
		t.Fatalf("task ls after its exit: %s, want STOPPED", st)
	}
	c.mustCtr(t, "-n", ctrNamespace, "task", "delete", id)
	c.mustCtr(t, "-n", ctrNamespace, "container", "delete", id)
	if alive(pid) || !cgroupGone(t, id) {
		t.Fatalf("after delete: init %d alive %v, cgroup gone %v", pid, alive(pid), cgroupGone(t, id))
	}
}

// waitCatches waits until process pid has a handler for sig: its shell's
// trap is set.
func waitCatches(t *testing.T, pid int, sig unix.Signal) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("pid %d to catch %v", pid, sig), func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			t.Fatalf("read status of %d: %v", pid, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				return err == nil && mask&(1<<(sig-1)) != 0
			}
		}
		return false
	})
}

// checkCtrTaskIsolated checks that the task's init has a PID namespace of
// its own and sits in cgroup cg in every v1 hierarchy and the unified one.
func checkCtrTaskIsolated(t *testing.T, pid int, cg string) {
	t.Helper()
	self, err1 := os.Readlink("/proc/self/ns/pid")
	its, err2 := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	if err := errors.Join(err1, err2); err != nil || self == its {
		t.Fatalf("PID namespace of %d: %s, ours %s (%v): want one of its own", pid, its, self, err)
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[2] != cg {
			t.Errorf("task init %d: cgroup %q in hierarchy %q, want %s", pid, f[2], f[1], cg)
		}
	}
}

// ctrRelease is a containerd the scenarios run against.
type ctrRelease struct {
	Name string // the subtests'
	// Version is the form of config.toml it reads.
	Version containerd.ConfigVersion
	// install returns the directory of its containerd, shim and ctr;
	// nil means those on PATH.
	install func(t *testing.T) string
	// server is how the version `ctr version` reports of the daemon begins.
	server string
}

// ctrReleases: Debian's containerd 1.6 (version 2 config) and containerd
// 2.4.2 (version 3 config) built at test time.
var ctrReleases = []ctrRelease{
	{Name: "containerd-1.6", Version: containerd.ConfigV2, server: "1.6."},
	{Name: "containerd-" + strings.TrimPrefix(containerd2, "v"), Version: containerd.ConfigV3, install: installContainerd2, server: strings.TrimPrefix(containerd2, "v") + "+"},
}

// containerd2 is the containerd 2.x release the scenarios build from the
// Go module proxy.
const containerd2 = "v2.4.2"

// installContainerd2 builds containerd2's containerd, shim and ctr into
// the repository's bin/containerd-<version>, unless they are there
// already: into a new directory beside it first, renamed to its name once
// all three are built, so an interrupted build leaves nothing that looks
// whole.
func installContainerd2(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "bin", "containerd-"+containerd2))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"containerd", "containerd-shim-runc-v2", "ctr"}
	whole := func() bool {
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
				return false
			}
		}
		return true
	}
	if whole() {
		return dir
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".containerd-"+containerd2+"-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	pkgs := make([]string, len(names))
	for i, n := range names {
		pkgs[i] = "github.com/containerd/containerd/v2/cmd/" + n + "@" + containerd2
	}
	goInstall(t, tmp, pkgs...)
	if err := os.Rename(tmp, dir); err != nil && !whole() {
		t.Fatalf("install containerd %s: %v", containerd2, err)
	}
	return dir
}

// goInstall builds pkgs (path@version) from the Go module proxy (the
// module cache when it holds them), static, into gobin.
func goInstall(t *testing.T, gobin string, pkgs ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"install"}, pkgs...)...)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
}

// ctrEnv is a private containerd with moor as the runc of every ctr run,
// and the event stream of its whole life.
type ctrEnv struct {
	d      *containerd.Daemon
	events *ctrEvents
	ids    []string // every task ID used, for the leak checks
}

// ctrStartTimeout bounds a private containerd's start.
const ctrStartTimeout = 20 * time.Second

// newCtr starts a private containerd of release rel (with the CRI plugin
// when cri is set) in a directory under scratch, checks that it is that
// release, and starts the watcher of its events. When the test ends it
// removes every container, stops the daemon, cleans up after it, and
// fails if anything was left: a container, a shim, a mount or its
// directory.
func newCtr(t *testing.T, rel ctrRelease, cri *containerd.CRI) *ctrEnv {
	t.Helper()
	var bin string
	if rel.install != nil {
		bin = rel.install(t)
	}
	dir, err := os.MkdirTemp(scratch, "ctd-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ctrStartTimeout)
	defer cancel()
	d, err := containerd.Start(ctx, containerd.Options{Dir: dir, Bin: bin, Version: rel.Version, CRI: cri})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	c := &ctrEnv{d: d}
	t.Cleanup(func() { c.close(t) })
	c.events = watchCtrEvents(t, d)
	if v := c.serverVersion(t); !strings.HasPrefix(v, rel.server) {
		t.Fatalf("containerd says it is version %q, want %s*", v, rel.server)
	}
	return c
}

// serverVersion is the daemon's version as `ctr version` reports it.
func (c *ctrEnv) serverVersion(t *testing.T) string {
	t.Helper()
	_, server, _ := strings.Cut(c.mustCtr(t, "version"), "Server:")
	for _, line := range strings.Split(server, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("ctr version names no server version:\n%s", server)
	return ""
}

// checkShim checks that the shim serving task (namespace/id) is the
// daemon's release's.
func (c *ctrEnv) checkShim(t *testing.T, task string) {
	t.Helper()
	shims, err := c.d.Shims()
	if err != nil {
		t.Fatal(err)
	}
	want := c.d.Binary("containerd-shim-runc-v2")
	for _, s := range shims {
		if s.Task == task {
			if s.Args[0] != want {
				t.Fatalf("shim of %s is %s, want %s", task, s.Args[0], want)
			}
			return
		}
	}
	t.Fatalf("no shim serves %s: %v", task, shims)
}

// close removes what the test left in the daemon, stops it and removes
// it, failing the test for each thing it had to remove.
func (c *ctrEnv) close(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found, err := c.d.RemoveAll(ctx)
	if len(found) > 0 || err != nil {
		t.Errorf("containers left in containerd: %v (%v)", found, err)
	}
	c.events.stop()
	if err := c.d.Stop(); err != nil {
		t.Error(err)
	}
	if t.Failed() {
		events, _ := os.ReadFile(c.events.file)
		t.Logf("containerd's log:\n%s\nits events:\n%s", c.d.Log(), events)
	}
	leaks, err := c.d.Remove()
	if len(leaks) > 0 || err != nil {
		t.Errorf("left behind by containerd, its shims or their tasks (now removed): %v (%v)", leaks, err)
	}
	if _, err := os.Stat(string(c.d.Layout)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("containerd's directory %s is still there: %v", c.d.Layout, err)
	}
}

// newID is a task ID for this test, recorded for the leak checks.
func (c *ctrEnv) newID(t *testing.T) string {
	id := taskID(t)
	c.ids = append(c.ids, id)
	return id
}

// importImage imports the image of busyboxRoot that img describes into
// namespace ns.
func (c *ctrEnv) importImage(t *testing.T, ns string, img ociimage.Image) {
	t.Helper()
	archive := filepath.Join(string(c.d.Layout), strings.NewReplacer("/", "_", ":", "_").Replace(img.Name)+".tar")
	if _, err := ociimage.WriteFile(archive, busyboxRoot, img); err != nil {
		t.Fatal(err)
	}
	c.mustCtr(t, "-n", ns, "images", "import", archive)
	c.events.wait(t, "/images/create", img.Name)
}

// ctr runs ctr on the daemon and waits for it; output goes through files,
// not pipes, for a task may inherit them.
func (c *ctrEnv) ctr(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, c.d.Ctr(context.Background(), args...))
}

func (c *ctrEnv) mustCtr(t *testing.T, args ...string) string {
	t.Helper()
	r := c.ctr(t, args...)
	if r.Code != 0 {
		t.Fatalf("ctr %s: %v", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// run is `ctr run` of the busybox image through moor, in namespace
// ctrNamespace, with cgroup <cgroupParent>/<id>.
func (c *ctrEnv) run(t *testing.T, opts []string, id string, args ...string) result {
	t.Helper()
	a := []string{"-n", ctrNamespace, "run", "--runc-binary", moorBin, "--runc-root", c.d.RuntimeRoot("moor"),
		"--cgroup", cgroupParent + "/" + id}
	a = append(append(append(a, opts...), busyboxImage, id), args...)
	return c.ctr(t, a...)
}

// task is the PID and status `ctr task ls` shows for id.
func (c *ctrEnv) task(t *testing.T, id string) (int, string) {
	t.Helper()
	for _, line := range strings.Split(c.mustCtr(t, "-n", ctrNamespace, "task", "ls"), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == id {
			pid, _ := strconv.Atoi(f[1])
			return pid, f[2]
		}
	}
	t.Fatalf("ctr task ls does not list %s", id)
	return 0, ""
}

// checkNothingLeft checks that no task, container, shim, cgroup, mount or
// moor state of the test's tasks is left while the daemon still runs.
func (c *ctrEnv) checkNothingLeft(t *testing.T, ns string) {
	t.Helper()
	for _, what := range []string{"tasks", "containers"} {
		if out := c.mustCtr(t, "-n", ns, what, "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("%s left in containerd: %s", what, out)
		}
	}
	waitFor(t, 10*time.Second, "the shims to exit", func() bool {
		shims, err := c.d.Shims()
		return err == nil && len(shims) == 0
	})
	for _, id := range c.ids {
		if !cgroupGone(t, id) {
			t.Errorf("cgroup %s/%s left behind", cgroupParent, id)
		}
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(string(c.d.Layout)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		t.Errorf("mount left behind: %s", m.Mountpoint)
	}
	_ = filepath.WalkDir(filepath.Dir(c.d.RuntimeRoot("moor")), func(p string, d fs.DirEntry, err error) error {
		if err == nil && (!d.IsDir() || slices.Contains(c.ids, d.Name())) {
			t.Errorf("moor state left behind: %s", p)
		}
		return nil
	})
}

// psPIDs are the PIDs `ctr task ps` lists.
func psPIDs(out string) []int {
	var pids []int
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			if pid, err := strconv.Atoi(f[0]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// ctrMetrics reads the METRIC VALUE table of `ctr task metrics`.
func ctrMetrics(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// ctrEvents is `ctr events` of a daemon, written to a file as it comes.
type ctrEvents struct {
	cmd  *exec.Cmd
	file string
}

// ctrEvent is one line of `ctr events`: time, namespace, topic, event.
type ctrEvent struct {
	Namespace, Topic string
	Event            map[string]any
}

// watchCtrEvents starts `ctr events`; the first import's event tells that
// it listens.
func watchCtrEvents(t *testing.T, d *containerd.Daemon) *ctrEvents {
	t.Helper()
	e := &ctrEvents{file: filepath.Join(string(d.Layout), "events.log")}
	f, err := os.Create(e.file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e.cmd = d.Ctr(context.Background(), "events")
	e.cmd.Stdout, e.cmd.Stderr = f, f
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start ctr events: %v", err)
	}
	return e
}

func (e *ctrEvents) stop() {
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
}

// all reads every event seen so far.
func (e *ctrEvents) all() []ctrEvent {
	f, err := os.Open(e.file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var evs []ctrEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// 2026-11-30 19:24:43.43 +0000 UTC moor /tasks/oom {"container_id":"t3"}
		f := strings.SplitN(sc.Text(), " ", 7)
		if len(f) < 7 || !strings.HasPrefix(f[5], "/") {
			continue
		}
		ev := ctrEvent{Namespace: f[4], Topic: f[5]}
		if json.Unmarshal([]byte(f[6]), &ev.Event) == nil {
			evs = append(evs, ev)
		}
	}
	return evs
}

// wait waits for an event of topic about subject (a container's ID or an
// image's name) and returns it.
func (e *ctrEvents) wait(t *testing.T, topic, subject string) ctrEvent {
	t.Helper()
	var found ctrEvent
	waitFor(t, 15*time.Second, "event "+topic+" of "+subject, func() bool {
		for _, ev := range e.all() {
			if ev.Topic == topic && (ev.Event["container_id"] == subject || ev.Event["name"] == subject) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// exitStatus waits for the exit event of task id's init and returns its
// status (absent in the event when 0).
func (e *ctrEvents) exitStatus(t *testing.T, id string) int {
	t.Helper()
	var status int
	waitFor(t, 15*time.Second, "the exit of "+id, func() bool {
		for _, ev := range e.all() {
			if ev.Topic == "/tasks/exit" && ev.Event["container_id"] == id && ev.Event["id"] == id {
				st, _ := ev.Event["exit_status"].(float64)
				status = int(st)
				return true
			}
		}
		return false
	})
	return status
}
