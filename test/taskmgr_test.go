package test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/rootfs"
	"github.com/lf-edge/moor/taskmgr"
)

// taskmgrCgroupParent holds the cgroups of the task manager's apps.
var taskmgrCgroupParent = cgroupRunParent + "-taskmgr"

// manager is one run of bin/moor-taskmgr.
type manager struct {
	cmd    *exec.Cmd
	status string // its status file
	log    string // its stderr
	done   chan error
}

// startManager runs moor-taskmgr over the apps directory, in the test
// state root and the namespace eve-user-apps.
func startManager(t *testing.T, apps, status string) *manager {
	t.Helper()
	m := &manager{status: status, log: filepath.Join(t.TempDir(), "taskmgr.log"), done: make(chan error, 1)}
	logf, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	m.cmd = exec.Command(filepath.Join(filepath.Dir(moorBin), taskmgrBinary), "--root", stateRoot,
		"--apps", apps, "--cgroup-parent", taskmgrCgroupParent, "--status", status)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.done <- m.cmd.Wait() }()
	t.Cleanup(func() {
		if m.cmd.ProcessState == nil { // still running: a test that failed half-way
			_ = m.cmd.Process.Signal(unix.SIGTERM)
			m.wait(t)
		}
		if t.Failed() {
			b, _ := os.ReadFile(m.log)
			t.Logf("moor-taskmgr log:\n%s", b)
		}
	})
	return m
}

// wait waits for the manager to exit and returns its exit code.
func (m *manager) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-m.done:
		code, err := exitCode(err)
		if err != nil {
			t.Fatalf("moor-taskmgr: %v", err)
		}
		return code
	case <-time.After(time.Minute):
		_ = m.cmd.Process.Kill()
		t.Fatal("moor-taskmgr did not exit")
		return 0
	}
}

// waitApps polls the status file until cond holds of it.
func (m *manager) waitApps(t *testing.T, what string, cond func(map[string]taskmgr.AppStatus) bool) map[string]taskmgr.AppStatus {
	t.Helper()
	var apps map[string]taskmgr.AppStatus
	waitFor(t, 30*time.Second, what, func() bool {
		apps = map[string]taskmgr.AppStatus{}
		var st taskmgr.Status
		if b, err := os.ReadFile(m.status); err == nil {
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatalf("status file: %v\n%s", err, b)
			}
		}
		for _, a := range st.Apps {
			apps[a.Name] = a
		}
		return cond(apps)
	})
	return apps
}

// allRunning holds when every app named runs.
func allRunning(names ...string) func(map[string]taskmgr.AppStatus) bool {
	return func(apps map[string]taskmgr.AppStatus) bool {
		for _, n := range names {
			if a := apps[n]; a.Status != lifecycle.Running || a.PID <= 0 {
				return false
			}
		}
		return true
	}
}

// addTaskmgrApp makes the app dir <apps>/<name>: a busybox root volume
// whose image config runs script in sh, and APP.json.
func addTaskmgrApp(t *testing.T, apps, name, script string, app *rootfs.App) {
	t.Helper()
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}}})
	writeJSON(t, filepath.Join(vol, taskmgr.AppFile), app)
	if err := os.Rename(vol, filepath.Join(apps, name)); err != nil {
		t.Fatal(err)
	}
}

// checkApp checks that the app's anchor is PID 1 of a PID namespace of
// its own, in the cgroup <taskmgrCgroupParent>/<name> with the memory
// limit and CPU quota of its APP.json.
func checkApp(t *testing.T, name string, pid int, memMiB int64) {
	t.Helper()
	self, _ := os.Readlink("/proc/self/ns/pid")
	if ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid"); err != nil || ns == self {
		t.Errorf("%s: pid namespace %q (%v), the test's is %q: want one of its own", name, ns, err, self)
	}
	cg := taskmgrCgroupParent + "/" + name
	procCgroup := readFile(t, "/proc/"+strconv.Itoa(pid)+"/cgroup")
	if !strings.Contains(procCgroup, ":"+cg+"\n") {
		t.Errorf("%s: anchor's cgroups\n%s\nwant %s", name, procCgroup, cg)
	}
	mem, quota := limitOf(t, cg, "memory", "memory.limit_in_bytes", "memory.max"), limitOf(t, cg, "cpu", "cpu.cfs_quota_us", "cpu.max")
	if mem != strconv.FormatInt(memMiB<<20, 10) {
		t.Errorf("%s: memory limit %s, want %d MiB", name, mem, memMiB)
	}
	if f := strings.Fields(quota); len(f) == 0 || f[0] != "100000" {
		t.Errorf("%s: CPU quota %q, want 100000 (1 CPU)", name, quota)
	}
}

// limitOf reads a limit of cgroup cg: the v1 controller's file, or the
// unified one's.
func limitOf(t *testing.T, cg, controller, v1, v2 string) string {
	t.Helper()
	for _, p := range []string{filepath.Join("/sys/fs/cgroup", controller, cg, v1), filepath.Join("/sys/fs/cgroup", cg, v2)} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no %s or %s of cgroup %s", v1, v2, cg)
	return ""
}

// appTasks lists the tasks of namespace eve-user-apps.
func appTasks(t *testing.T) []string {
	t.Helper()
	return strings.Fields(mustMoor(t, "--namespace", taskmgr.DefaultNamespace, "list", "--quiet"))
}

// TestTaskManager runs the example task manager, bin/moor-taskmgr, over
// three apps made from busybox volumes: each runs in its cgroup with its
// limits; a killed app comes back with a new PID; a killed manager leaves
// its apps running and the next one adopts them; SIGTERM stops and
// deletes them all and exits 0.
func TestTaskManager(t *testing.T) {
	apps := filepath.Join(t.TempDir(), "apps")
	if err := os.Mkdir(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	status := filepath.Join(t.TempDir(), "status.json")
	one, mem := 1, map[string]int64{"web": 32, "db": 48, "stubborn": 16}
	waitTerm := `trap 'exit 0' TERM; sleep 1000 & wait`
	addTaskmgrApp(t, apps, "web", waitTerm, &rootfs.App{MemoryMiB: ptr(mem["web"]), CPUs: &one})
	addTaskmgrApp(t, apps, "db", waitTerm, &rootfs.App{MemoryMiB: ptr(mem["db"]), CPUs: &one})
	// stubborn ignores SIGTERM: its 1s grace ends in SIGKILL.
	addTaskmgrApp(t, apps, "stubborn", `trap '' TERM; sleep 1000 & wait; sleep 1000`,
		&rootfs.App{MemoryMiB: ptr(mem["stubborn"]), CPUs: &one, Annotations: map[string]string{"moor.stop-timeout": "1s"}})
	t.Cleanup(func() {
		for name := range mem {
			moor(t, "--namespace", taskmgr.DefaultNamespace, "delete", "--force", name)
		}
	})
	names := []string{"web", "db", "stubborn"}

	m := startManager(t, apps, status)
	first := m.waitApps(t, "three apps running", allRunning(names...))
	for _, n := range names {
		checkApp(t, n, first[n].PID, mem[n])
	}

	mustMoor(t, "--namespace", taskmgr.DefaultNamespace, "kill", "web", "KILL")
	now := m.waitApps(t, "web running again", func(a map[string]taskmgr.AppStatus) bool {
		return allRunning("web")(a) && a["web"].PID != first["web"].PID
	})
	web := now["web"]
	if ex := web.LastExit; web.Restarts != 1 || ex == nil || ex.Code != 137 || ex.Signal != "SIGKILL" {
		t.Errorf("web after its kill: %+v, last exit %+v; want restarts 1, 137 by SIGKILL", web, ex)
	}
	checkApp(t, "web", web.PID, mem["web"])
	if now["db"].PID != first["db"].PID || now["stubborn"].PID != first["stubborn"].PID {
		t.Errorf("other apps changed with web's kill: %+v, were %+v", now, first)
	}

	// SIGKILL of the manager leaves its apps running; the next one adopts them.
	if err := m.cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	m.wait(t)
	for _, n := range names {
		if !alive(now[n].PID) {
			t.Fatalf("%s (pid %d) died with its manager", n, now[n].PID)
		}
	}
	if err := os.Remove(status); err != nil { // the killed manager's last word
		t.Fatal(err)
	}
	m = startManager(t, apps, status)
	adopted := m.waitApps(t, "three apps running under the new manager", allRunning(names...))
	for _, n := range names {
		if adopted[n].PID != now[n].PID || adopted[n].Restarts != now[n].Restarts {
			t.Errorf("%s after the manager's restart: pid %d, restarts %d; want adopted: pid %d, restarts %d",
				n, adopted[n].PID, adopted[n].Restarts, now[n].PID, now[n].Restarts)
		}
	}
	if tasks := appTasks(t); len(tasks) != len(names) {
		t.Errorf("tasks after the manager's restart: %+v, want %d", tasks, len(names))
	}

	if err := m.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := m.wait(t); code != 0 {
		t.Errorf("moor-taskmgr exited %d after SIGTERM, want 0", code)
	}
	if tasks := appTasks(t); len(tasks) != 0 {
		t.Errorf("tasks after SIGTERM: %+v, want none", tasks)
	}
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if alive(adopted[n].PID) {
			t.Errorf("%s (pid %d) still runs after SIGTERM", n, adopted[n].PID)
		}
	}
	if cgroup.Exists(hier, taskmgrCgroupParent) {
		t.Errorf("cgroup %s left after SIGTERM", taskmgrCgroupParent)
	}
	if _, err := os.Stat(status); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status file after SIGTERM: %v, want it removed", err)
	}
}
