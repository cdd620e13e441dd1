package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
)

// TestPodman drives moor through podman, as a user of podman on a cgroupfs
// (v1 / hybrid) host would: `podman --runtime <moor> run --rootfs DIR …`,
// with no registry and no image. Steps: run --rm with output; exit status
// 3; a detached run under podman's init (catatonit); exec with output and
// exit status; top and ps; pause and unpause; stop (SIGTERM → 143); rm; a
// detached run whose PID 1 ignores SIGTERM, stopped by SIGKILL (137); rm
// --force of a running container; and nothing left behind.
//
// podman is kept private: storage, run state, temporary files, locks,
// events, network configuration and its containers.conf all live in the
// test's directory; cgroups go under the harness's cgroup parent.
func TestPodman(t *testing.T) {
	pm := newPodmanEnv(t)

	t.Run("run-rm-output", func(t *testing.T) {
		r := pm.run(t, pm.runArgs([]string{"--rm", "--cidfile", pm.cidFile("rm-output"), "--conmon-pidfile", pm.conmonPidFile("rm-output")},
			"/bin/sh", "-c", "echo hello from podman; cat /proc/self/cgroup")...)
		id := pm.readID(t, "rm-output")
		if r.Code != 0 || !strings.Contains(r.Stdout, "hello from podman") {
			t.Fatalf("podman run --rm: %v", r)
		}
		// The task ran in the cgroup podman asked for: <cgroup-parent>/libpod-<id>.
		if want := pm.cgroupParent + "/libpod-" + id; !strings.Contains(r.Stdout, want) {
			t.Fatalf("task's /proc/self/cgroup does not name %s:\n%s", want, r.Stdout)
		}
	})

	t.Run("exit-status-3", func(t *testing.T) {
		r := pm.run(t, pm.runArgs([]string{"--rm", "--cidfile", pm.cidFile("exit3"), "--conmon-pidfile", pm.conmonPidFile("exit3")},
			"/bin/sh", "-c", "exit 3")...)
		pm.readID(t, "exit3")
		if r.Code != 3 {
			t.Fatalf("podman run of `exit 3`: %v, want exit status 3", r)
		}
	})

	t.Run("detached", func(t *testing.T) {
		// --init: podman's catatonit is PID 1 and passes SIGTERM on to sleep,
		// so that stop ends the container with SIGTERM's status (143).
		const name = "moor-detached"
		r := pm.mustRun(t, pm.runArgs([]string{"-d", "--init", "--name", name, "--conmon-pidfile", pm.conmonPidFile(name)},
			"/bin/sleep", "600")...)
		id := strings.TrimSpace(r.Stdout)
		pm.addID(id)
		ins := pm.inspect(t, name)
		if ins.State.Status != "running" || ins.State.Pid <= 0 || ins.State.ConmonPid <= 0 {
			t.Fatalf("after run -d: state %+v, want running with a PID and conmon's PID", ins.State)
		}
		if ins.ID != id || ins.OCIRuntime != moorBin {
			t.Fatalf("inspect: id %s runtime %s, want %s through %s", ins.ID, ins.OCIRuntime, id, moorBin)
		}
		pm.addConmon(ins.State.ConmonPid)
		// The PID inspect gives is this test's conmon, alive: what the
		// nothing-left step looks for is there to be found.
		if !pm.conmonLeft(ins.State.ConmonPid) {
			t.Fatalf("conmon PID %d from podman inspect is not a live conmon of this test", ins.State.ConmonPid)
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", ins.State.Pid))
		if want := pm.cgroupParent + "/libpod-" + id; err != nil || !strings.Contains(string(cg), want) {
			t.Fatalf("container PID %d is not in %s (%v):\n%s", ins.State.Pid, want, err, cg)
		}
		// moor itself holds the task (its default state root: podman 4.3
		// leaves --runtime-flag out of its `delete` call, see newPodmanEnv).
		if r := pm.moorState(t, id); r.Code != 0 || !strings.Contains(r.Stdout, `"running"`) {
			t.Fatalf("moor state %s: %v", id, r)
		}

		r = pm.mustRun(t, "exec", name, "/bin/sh", "-c", "echo exec in $(hostname) nofile $(ulimit -n); cat /proc/1/cmdline | tr '\\0' ' '")
		want := fmt.Sprintf("exec in %s nofile %d", id[:12], pm.nofile)
		if !strings.Contains(r.Stdout, want) || !strings.Contains(r.Stdout, "sleep 600") {
			t.Fatalf("podman exec: %v, want %q and the container's sleep", r, want)
		}
		if r := pm.run(t, "exec", name, "/bin/sh", "-c", "exit 7"); r.Code != 7 {
			t.Fatalf("podman exec of `exit 7`: %v, want exit status 7", r)
		}

		r = pm.mustRun(t, "top", name)
		if !strings.Contains(r.Stdout, "sleep 600") {
			t.Fatalf("podman top does not show sleep:\n%s", r.Stdout)
		}
		r = pm.mustRun(t, "ps", "--format", "{{.ID}} {{.Names}} {{.Status}}")
		if !strings.Contains(r.Stdout, id[:12]+" "+name+" Up") {
			t.Fatalf("podman ps does not show %s up:\n%s", name, r.Stdout)
		}

		pm.mustRun(t, "pause", name)
		if st := pm.inspect(t, name).State; st.Status != "paused" {
			t.Fatalf("after pause: %+v", st)
		}
		if s, ok := pm.freezerState(id); ok && s != "FROZEN" {
			t.Fatalf("after pause: freezer.state %s", s)
		}
		pm.mustRun(t, "unpause", name)
		if st := pm.inspect(t, name).State; st.Status != "running" {
			t.Fatalf("after unpause: %+v", st)
		}
		if s, ok := pm.freezerState(id); ok && s != "THAWED" {
			t.Fatalf("after unpause: freezer.state %s", s)
		}

		pm.mustRun(t, "stop", "--time", "10", name)
		st := pm.inspect(t, name).State
		if st.Status != "exited" || st.ExitCode != 143 {
			t.Fatalf("after stop: %+v, want exited with status 143 (SIGTERM)", st)
		}
		if r := pm.mustRun(t, "wait", name); strings.TrimSpace(r.Stdout) != "143" {
			t.Fatalf("podman wait: %q, want 143", r.Stdout)
		}
		if alive(ins.State.Pid) {
			t.Fatalf("container PID %d alive after stop", ins.State.Pid)
		}

		pm.mustRun(t, "rm", name)
		if r := pm.mustRun(t, "ps", "-a", "-q", "--no-trunc"); strings.Contains(r.Stdout, id) {
			t.Fatalf("podman ps -a still lists %s after rm:\n%s", id, r.Stdout)
		}
	})

	t.Run("stop-sigkill", func(t *testing.T) {
		// sleep as PID 1 has no handler for SIGTERM, which PID 1 does not get
		// by default: stop waits its timeout, then SIGKILL (137).
		const name = "moor-sigkill"
		r := pm.mustRun(t, pm.runArgs([]string{"-d", "--name", name, "--conmon-pidfile", pm.conmonPidFile(name)},
			"/bin/sleep", "600")...)
		pm.addID(strings.TrimSpace(r.Stdout))
		pm.addConmon(pm.inspect(t, name).State.ConmonPid)
		pm.mustRun(t, "stop", "--time", "1", name)
		if st := pm.inspect(t, name).State; st.Status != "exited" || st.ExitCode != 137 {
			t.Fatalf("after stop: %+v, want exited with status 137 (SIGKILL)", st)
		}
		pm.mustRun(t, "rm", name)
	})

	t.Run("rm-force-running", func(t *testing.T) {
		const name = "moor-rmf"
		r := pm.mustRun(t, pm.runArgs([]string{"-d", "--name", name, "--conmon-pidfile", pm.conmonPidFile(name)},
			"/bin/sleep", "600")...)
		pm.addID(strings.TrimSpace(r.Stdout))
		ins := pm.inspect(t, name)
		pm.addConmon(ins.State.ConmonPid)
		pm.mustRun(t, "rm", "--force", "--time", "0", name)
		if alive(ins.State.Pid) {
			t.Fatalf("container PID %d alive after rm --force", ins.State.Pid)
		}
	})

	// Runs after the steps, before the directory goes: every container,
	// conmon, moor task, cgroup and mount of this test is gone.
	t.Run("nothing-left", func(t *testing.T) { pm.checkNothingLeft(t) })
}

// podmanEnv is one private podman: its directory, its configuration and
// what the test started through it.
type podmanEnv struct {
	dir          string   // everything of podman's: storage, run state, tmp, rootfs copy
	rootfs       string   // a writable copy of busyboxRoot
	cgroupParent string   // absolute, under the harness's cgroupParent
	env          []string // CONTAINERS_CONF and CONTAINERS_STORAGE_CONF
	global       []string // podman's global options
	ids          []string // container IDs (podman's, also moor's task IDs)
	conmons      []int    // conmon PIDs, from podman's inspect and --conmon-pidfile
	nofile       uint64   // the containers' RLIMIT_NOFILE (containers.conf)
}

func newPodmanEnv(t *testing.T) *podmanEnv {
	t.Helper()
	for _, bin := range []string{"podman", "conmon"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (scripts/deps.sh installs podman, conmon and catatonit): %v", bin, err)
		}
	}
	// A directory of its own, with a short name: podman refuses a runroot
	// longer than 50 characters ("the specified runroot is longer than
	// 50 characters"), which the harness's scratch directory may exceed.
	dir, err := os.MkdirTemp("", "moor-podman-")
	if err != nil {
		t.Fatal(err)
	}
	if run := filepath.Join(dir, "run"); len(run) > 50 {
		os.Remove(dir)
		t.Fatalf("podman's runroot %s is longer than the 50 characters podman accepts: set TMPDIR to a shorter directory", run)
	}
	pm := &podmanEnv{
		dir:          dir,
		rootfs:       filepath.Join(dir, "rootfs"),
		cgroupParent: cgroupParent + "/" + taskID(t),
	}
	t.Cleanup(func() { pm.cleanup(t) })

	// podman writes into the rootfs it is given (mount points for
	// /etc/hosts, /etc/hostname, /run/.containerenv, /etc/mtab): it gets
	// a copy, not the harness's shared busybox.
	if out, err := exec.Command("cp", "-a", busyboxRoot, pm.rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy busybox rootfs: %v: %s", err, out)
	}

	// RLIMIT_NOFILE and RLIMIT_NPROC: podman puts both into every spec (and
	// each exec's process), by default at 1048576. Raising a hard limit
	// needs CAP_SYS_RESOURCE, which this VM's bounding set lacks, so runc
	// fails as moor does ("error setting rlimits for ready process: error
	// setting rlimit type 7: operation not permitted"). podman's own remedy is default_ulimits in
	// containers.conf: values at or below the limits the runtime inherits
	// from podman through conmon. Those are podman's own: it keeps the hard
	// RLIMIT_NOFILE it was given when it may not raise it to 1048576, and
	// sets its RLIMIT_NPROC to 32768 (lowering needs no capability; seen
	// with strace, podman 4.3.1), or keeps a lower one.
	var nofile, nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		t.Fatal(err)
	}
	nprocMax := min(nproc.Max, 32768)
	pm.nofile = nofile.Max
	// lock_type "file": locks in the tmp dir, not the host-wide
	// /dev/shm/libpod_lock. network_config_dir: CNI's configuration and
	// lock in the test's directory, not /etc/cni/net.d (--network none
	// needs no CNI plugin). CONTAINERS_CONF makes podman read this file
	// and no other.
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]
log_driver = "k8s-file"

[engine]
lock_type = "file"

[network]
network_config_dir = %q
`, nofile.Max, nofile.Max, nprocMax, nprocMax, filepath.Join(dir, "net.d"))
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "run"))
	for name, content := range map[string]string{"containers.conf": conf, "storage.conf": storage} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pm.env = []string{
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
	}
	// moor keeps its task state in its default root (/run/moor): podman
	// 4.3.1 passes --runtime-flag to create, start, exec, kill, pause and
	// resume but not to `delete --force`, so a private --root would leave
	// every task's state behind (runc's too). Task IDs are podman's
	// 64-digit container IDs, which meet no one else's.
	pm.global = []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		"--runtime", moorBin,
	}
	return pm
}

// runArgs makes the arguments of `podman run`: opts, then the options of
// every container (no network, so no CNI or netavark; the test's cgroup
// parent; the rootfs copy), then the command.
func (pm *podmanEnv) runArgs(opts []string, command ...string) []string {
	args := append([]string{"run"}, opts...)
	args = append(args, "--network", "none", "--cgroup-parent", pm.cgroupParent, "--rootfs", pm.rootfs)
	return append(args, command...)
}

func (pm *podmanEnv) cidFile(name string) string {
	return filepath.Join(pm.dir, name+".cid")
}

func (pm *podmanEnv) conmonPidFile(name string) string {
	return filepath.Join(pm.dir, name+".conmon.pid")
}

// readID reads the container ID podman wrote to the step's --cidfile.
func (pm *podmanEnv) readID(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(pm.cidFile(name))
	id := strings.TrimSpace(string(b))
	if err != nil || len(id) != 64 {
		t.Fatalf("podman's cidfile %s: %q (%v)", pm.cidFile(name), b, err)
	}
	pm.addID(id)
	return id
}

func (pm *podmanEnv) addID(id string) {
	if id != "" {
		pm.ids = append(pm.ids, id)
	}
}

func (pm *podmanEnv) addConmon(pid int) {
	if pid > 0 && !slices.Contains(pm.conmons, pid) {
		pm.conmons = append(pm.conmons, pid)
	}
}

// run runs podman with the private globals and waits for it (at most a
// minute). Output goes through files: conmon must not inherit a pipe.
func (pm *podmanEnv) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := append(append([]string{}, pm.global...), args...)
	cmd := exec.CommandContext(ctx, "podman", full...)
	cmd.Env = append(os.Environ(), pm.env...)
	r := runCmd(t, cmd)
	if ctx.Err() != nil {
		t.Fatalf("podman %s: timed out: %v", strings.Join(args, " "), r)
	}
	return r
}

// mustRun runs podman and fails the test unless it exits 0.
func (pm *podmanEnv) mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := pm.run(t, args...)
	if r.Code != 0 {
		t.Fatalf("podman %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// podmanInspect is the part of `podman inspect` the test reads.
type podmanInspect struct {
	ID         string `json:"Id"`
	OCIRuntime string
	State      struct {
		Status    string
		Pid       int
		ConmonPid int
		ExitCode  int
	}
}

func (pm *podmanEnv) inspect(t *testing.T, name string) podmanInspect {
	t.Helper()
	r := pm.mustRun(t, "container", "inspect", name)
	var all []podmanInspect
	if err := json.Unmarshal([]byte(r.Stdout), &all); err != nil || len(all) != 1 {
		t.Fatalf("podman inspect %s: %v: %s", name, err, r.Stdout)
	}
	return all[0]
}

// moorState runs `moor state ID` on moor's default root, where podman's
// tasks live.
func (pm *podmanEnv) moorState(t *testing.T, id string) result {
	t.Helper()
	return runCmd(t, exec.Command(moorBin, "state", id))
}

// freezerState reads the container's v1 freezer state; ok is false on a
// host without the v1 freezer.
func (pm *podmanEnv) freezerState(id string) (string, bool) {
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", pm.cgroupParent, "libpod-"+id, "freezer.state"))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// leftProcs lists the live processes whose command line names the test's
// directory: conmons (of containers and of exec sessions), podman's
// cleanup processes that conmon starts, moor's anchors.
func (pm *podmanEnv) leftProcs() map[int]string {
	left := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte(pm.dir)) || !alive(pid) {
			continue
		}
		left[pid] = strings.Join(strings.Fields(strings.ReplaceAll(string(b), "\x00", " ")), " ")
	}
	return left
}

// conmonLeft reports whether pid is one of this test's conmons, alive.
func (pm *podmanEnv) conmonLeft(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && alive(pid) && bytes.Contains(b, []byte("conmon")) && bytes.Contains(b, []byte(pm.dir))
}

// checkNothingLeft fails the test if a container, conmon, podman or moor
// process, moor task, cgroup or mount of this test is left.
func (pm *podmanEnv) checkNothingLeft(t *testing.T) {
	t.Helper()
	if r := pm.mustRun(t, "ps", "-a", "-q"); strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("podman ps -a lists containers at the end:\n%s", r.Stdout)
	}
	// Conmon PIDs: from inspect (detached runs) and from --conmon-pidfile
	// (every run, --rm ones included).
	for _, f := range podmanGlob(t, filepath.Join(pm.dir, "*.conmon.pid")) {
		b, err := os.ReadFile(f)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || perr != nil {
			t.Errorf("conmon pid file %s: %q %v %v", f, b, err, perr)
			continue
		}
		pm.addConmon(pid)
	}
	if len(pm.conmons) == 0 {
		t.Errorf("no conmon PID learned from podman")
	}
	t.Logf("containers %d, conmon PIDs %v", len(pm.ids), pm.conmons)
	// conmon exits once the container is gone and its exit command
	// (podman container cleanup) is started: give both a moment.
	for _, pid := range pm.conmons {
		if !poll(10*time.Second, func() bool { return !pm.conmonLeft(pid) }) {
			t.Errorf("conmon %d still running", pid)
		}
	}
	poll(10*time.Second, func() bool { return len(pm.leftProcs()) == 0 })
	for pid, cmdline := range pm.leftProcs() {
		t.Errorf("process %d left: %s", pid, cmdline)
	}
	for _, id := range pm.ids {
		if r := pm.moorState(t, id); r.Code == 0 {
			t.Errorf("moor still holds task %s: %s", id, r.Stdout)
		}
	}
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range pm.ids {
		if cgroup.Exists(hier, pm.cgroupParent+"/libpod-"+id) {
			t.Errorf("cgroup %s/libpod-%s left", pm.cgroupParent, id)
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], pm.dir) {
				t.Errorf("mount left: %s", f[4])
			}
		}
	}
	pm.removeCgroups(t, hier)
}

// removeCgroups removes podman's conmon cgroup (<parent>/conmon, where
// podman's cgroupfs manager puts every conmon and which it never removes)
// and the test's cgroup parent, in every hierarchy. Any other cgroup left
// under the parent is reported.
func (pm *podmanEnv) removeCgroups(t *testing.T, hier []string) {
	t.Helper()
	for _, h := range hier {
		parent := filepath.Join(h, pm.cgroupParent)
		if _, err := os.Stat(parent); err != nil {
			continue
		}
		kids, _ := os.ReadDir(parent)
		for _, k := range kids {
			if !k.IsDir() {
				continue
			}
			p := filepath.Join(parent, k.Name())
			if k.Name() != "conmon" {
				t.Errorf("cgroup left: %s", p)
				continue
			}
			if err := os.Remove(p); err != nil {
				t.Errorf("remove podman's conmon cgroup: %v", err)
			}
		}
		if err := os.Remove(parent); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove cgroup parent: %v", err)
		}
	}
}

// cleanup runs whatever the steps left undone: containers removed through
// podman, processes of this test killed by PID, the directory removed
// once nothing is mounted in it. Leftovers were reported by the
// nothing-left step; cleanup only keeps them from outliving the test.
func (pm *podmanEnv) cleanup(t *testing.T) {
	if r := pm.run(t, "ps", "-a", "-q"); r.Code == 0 && strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("removing containers left: %s", strings.Join(strings.Fields(r.Stdout), " "))
		pm.run(t, append([]string{"rm", "--force", "--time", "0"}, strings.Fields(r.Stdout)...)...)
	}
	for pid, cmdline := range pm.leftProcs() {
		t.Errorf("killing process %d left: %s", pid, cmdline)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	for _, id := range pm.ids {
		if r := pm.moorState(t, id); r.Code == 0 {
			_ = exec.Command(moorBin, "delete", "--force", id).Run()
		}
	}
	if hier, err := cgroup.Hierarchies(); err == nil {
		for _, h := range hier {
			_ = os.Remove(filepath.Join(h, pm.cgroupParent, "conmon"))
			_ = os.Remove(filepath.Join(h, pm.cgroupParent))
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), " "+pm.dir) {
		t.Errorf("mounts left under %s: directory kept", pm.dir)
		return
	}
	if err := os.RemoveAll(pm.dir); err != nil {
		t.Errorf("remove podman's directory: %v", err)
	}
}

func podmanGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
