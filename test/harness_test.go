package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/reaper"
)

// cgroupRunParent holds every cgroup of this run's tests: a folder of its
// own under /moor-test, so that two runs on one host never meet.
var cgroupRunParent = fmt.Sprintf("/moor-test/run-%d", os.Getpid())

// cgroupParent holds the cgroups of most tests' tasks.
var cgroupParent = cgroupRunParent

// childEnv marks the test process that runs the tests, under the reaper.
const childEnv = "MOOR_TEST_UNDER_REAPER"

var (
	moorBin     string // the moor binary under test
	busyboxRoot string // a read-only busybox rootfs shared by tests
	stateRoot   string // --root of every moor call
	scratch     string // where bundles and files of tests go
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: moor's integration tests need root (they make namespaces, cgroups and mounts); run them as root, as CI does")
		os.Exit(1)
	}
	if os.Getenv(childEnv) == "" {
		os.Exit(runUnderReaper())
	}
	code, err := setupAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// runUnderReaper re-runs this test binary as a child of a subreaper, and
// reaps every orphan (anchors whose moor CLI exited) until the tests end.
func runUnderReaper() int {
	if err := reaper.BecomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	signal.Ignore(unix.SIGINT, unix.SIGTERM) // the child gets them from the terminal too
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	rp := reaper.NewReaper() // orphans are reaped and forgotten
	defer rp.Close()
	done := make(chan reaper.Reaped, 1)
	if err := rp.Start(cmd, func(r reaper.Reaped) { done <- r }); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start tests:", err)
		return 1
	}
	return (<-done).Code()
}

func setupAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "moor-it-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	scratch = filepath.Join(dir, "work")
	stateRoot = filepath.Join(dir, "state")
	if moorBin, err = buildMoor(filepath.Join(dir, "bin")); err != nil {
		return 0, err
	}
	if busyboxRoot, err = buildBusybox(filepath.Join(dir, "busybox")); err != nil {
		return 0, err
	}
	for _, d := range []string{scratch, stateRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 0, err
		}
	}
	// The run's cgroup parent is the harness's own, made before any task:
	// moor then removes only the parents it made below it, and another
	// run's cgroups under /moor-test never keep one of this run's alive.
	hier, err := cgroup.Hierarchies()
	if err != nil {
		return 0, err
	}
	for _, h := range hier {
		if err := os.MkdirAll(filepath.Join(h, cgroupRunParent), 0o755); err != nil {
			return 0, err
		}
	}
	code := m.Run()
	if err := checkNothingLeft(dir); err != nil {
		return 0, err
	}
	return code, nil
}

// buildMoor uses $MOOR_BIN when set, else builds the binary as make does.
// Either way the lean anchor, moor-anchor, and the guest init, moor-guest,
// sit beside it, where moor vm spec looks for them, and so does the
// example task manager, moor-taskmgr: each is built there when missing.
// It must not live in the same tree as the state root.
func buildMoor(binDir string) (string, error) {
	moor := filepath.Join(binDir, "moor")
	withLibcontainer := []string{"-tags", "seccomp netgo osusergo", "-ldflags", "-extldflags -static"}
	if p := os.Getenv("MOOR_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			moor, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return "", fmt.Errorf("find MOOR_BIN: %w", err)
		}
	} else if err := goBuild(moor, "../cmd/moor", false, withLibcontainer...); err != nil {
		return "", err
	}
	lean := []string{"-trimpath", "-ldflags", "-s -w"}
	for _, b := range []struct {
		name, pkg string
		static    bool // no cgo
		flags     []string
	}{
		{anchorBinary, "../cmd/moor-anchor", true, lean},
		{"moor-guest", "../cmd/moor-guest", true, lean},
		{taskmgrBinary, "../cmd/moor-taskmgr", false, withLibcontainer},
	} {
		p := filepath.Join(filepath.Dir(moor), b.name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := goBuild(p, b.pkg, b.static, b.flags...); err != nil {
			return "", err
		}
	}
	return moor, nil
}

// The file names of the lean anchor and of the example task manager
// beside moor.
const (
	anchorBinary  = "moor-anchor"
	taskmgrBinary = "moor-taskmgr"
)

// goBuild builds pkg into out; static builds it without cgo.
func goBuild(out, pkg string, static bool, flags ...string) error {
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, pkg)...)
	if static {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	return nil
}

// buildBusybox makes a minimal root filesystem from Debian's busybox-static.
func buildBusybox(root string) (string, error) {
	src, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox-static is not installed (apt-get install busybox-static): %w", err)
	}
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "mnt", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		return "", err
	}
	list, err := exec.Command(src, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			return "", err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return root, nil
}

// checkNothingLeft fails the run if a test left a task, cgroup (a parent
// cgroup moor made included), mount or state file behind, and then removes
// the test cgroup parents once empty.
func checkNothingLeft(dir string) error {
	var leaks []string
	hier, err := cgroup.Hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hier {
		// The run's other parents (-vm, -rootfs, -eve) are made by moor
		// as a task's missing ancestors: one left, even empty, is a
		// leak of moor's registry of the parents it made.
		made, _ := filepath.Glob(filepath.Join(h, cgroupRunParent+"-*"))
		for _, p := range made {
			leaks = append(leaks, "cgroup parent "+p+" (moor made it and did not remove it)")
		}
		for _, p := range append(made, filepath.Join(h, cgroupRunParent)) {
			kids, _ := os.ReadDir(p)
			for _, k := range kids {
				if k.IsDir() {
					leaks = append(leaks, "cgroup "+filepath.Join(p, k.Name()))
				}
			}
			_ = os.Remove(p)
		}
		_ = os.Remove(filepath.Join(h, filepath.Dir(cgroupRunParent))) // when no other run holds it
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			leaks = append(leaks, "mount "+f[4])
		}
	}
	_ = filepath.WalkDir(stateRoot, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != stateRoot {
			leaks = append(leaks, "state "+p)
		}
		return nil
	})
	if len(leaks) > 0 {
		return fmt.Errorf("tests left things behind:\n  %s", strings.Join(leaks, "\n  "))
	}
	fmt.Println("leak check: no task, cgroup, mount or state file left behind")
	return nil
}

var taskSeq atomic.Int64

// taskID makes a task ID unique within the run from the test's name.
func taskID(t *testing.T) string {
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("%s-%d", strings.Trim(name, "-."), taskSeq.Add(1))
}

// bundle is a task's bundle directory and the spec it will write.
type bundle struct {
	ID   string
	Dir  string
	Spec *specs.Spec
}

// newBundle makes a bundle whose task runs args in the busybox rootfs, in
// its own namespaces (PID among them) and in cgroup <cgroupParent>/<id>, with a
// 64 MiB memory limit and 512 CPU shares.
func newBundle(t *testing.T, args ...string) *bundle {
	t.Helper()
	id := taskID(t)
	dir := filepath.Join(scratch, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := specconv.Example()
	s.Root = &specs.Root{Path: busyboxRoot, Readonly: true}
	s.Process.Terminal = false
	s.Process.Args = args
	s.Hostname = id
	limit, shares := int64(64<<20), uint64(512)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	s.Linux.CgroupsPath = cgroupParent + "/" + id
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=16m"}})
	return &bundle{ID: id, Dir: dir, Spec: s}
}

// write saves the bundle's config.json.
func (b *bundle) write(t *testing.T) {
	t.Helper()
	raw, err := json.MarshalIndent(b.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// result is what one moor call did.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
}

// moor runs the CLI with the test state root and waits for it.
func moor(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, moorCmd(args...))
}

// runCmd runs cmd and waits for it. Output goes through files, not pipes:
// an anchor inherits moor's stdio and would hold a pipe open long after
// moor exits.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	out, errf := captureOutput(t, cmd)
	return finish(t, cmd, cmd.Run(), out, errf)
}

// captureOutput points cmd's stdout and stderr at unlinked files.
func captureOutput(t *testing.T, cmd *exec.Cmd) (out, errf *os.File) {
	t.Helper()
	out, errf = tempFile(t), tempFile(t)
	cmd.Stdout, cmd.Stderr = out, errf
	return out, errf
}

// finish reads back the output captureOutput gave cmd and its exit code;
// a command that could not run fails the test.
func finish(t *testing.T, cmd *exec.Cmd, err error, out, errf *os.File) result {
	t.Helper()
	r := result{Stdout: readBack(t, out), Stderr: readBack(t, errf)}
	if r.Code, err = exitCode(err); err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return r
}

// exitCode is the status of a command that ran, in the shell's
// convention (128+signal when a signal killed it); err when it did not run.
func exitCode(err error) (int, error) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ee.ExitCode(), nil
}

// tempFile is an unlinked file for a child's output.
func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(scratch, "out-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(f.Name())
	return f
}

func readBack(t *testing.T, f *os.File) string {
	t.Helper()
	defer f.Close()
	b, err := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func moorCmd(args ...string) *exec.Cmd {
	return exec.Command(moorBin, append([]string{"--root", stateRoot}, args...)...)
}

// mustMoor runs the CLI and fails the test unless it exits 0.
func mustMoor(t *testing.T, args ...string) string {
	t.Helper()
	r := moor(t, args...)
	if r.Code != 0 {
		t.Fatalf("moor %s: %v", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// createTask writes the bundle, creates its task and makes sure it is
// deleted when the test ends, whatever happens.
func createTask(t *testing.T, b *bundle, extra ...string) {
	t.Helper()
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	mustMoor(t, append(append([]string{"create", "--bundle", b.Dir}, extra...), b.ID)...)
}

// runDetached creates and starts the bundle's task.
func runDetached(t *testing.T, b *bundle) int {
	t.Helper()
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	mustMoor(t, "run", "--detach", "--bundle", b.Dir, b.ID)
	return taskState(t, b.ID).PID
}

// recordFile is moor's record of a task in the default namespace.
func recordFile(id string) string {
	return filepath.Join(stateRoot, ".tasks", "default", id, "moor.json")
}

// taskState reads `moor state`.
func taskState(t *testing.T, ref string) lifecycle.State {
	t.Helper()
	var st lifecycle.State
	if err := json.Unmarshal([]byte(mustMoor(t, "state", ref)), &st); err != nil {
		t.Fatalf("decode state of %s: %v", ref, err)
	}
	return st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// exitRecorded reports whether st is a stopped task whose exit its reaper
// has recorded: between an anchor's end and its reap, state already reads
// stopped, with the exit unknown.
func exitRecorded(st lifecycle.State) bool {
	return st.Status == lifecycle.Stopped && st.Exit != nil && st.Exit.Reason != lifecycle.ExitUnknown
}

// poll calls cond, backing off, until it holds (true) or the timeout
// passes (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; !cond(); delay = min(2*delay, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
	return true
}

// waitStatus polls the task's state until it reads want.
func waitStatus(t *testing.T, ref string, want lifecycle.Status) lifecycle.State {
	t.Helper()
	var st lifecycle.State
	waitFor(t, 10*time.Second, fmt.Sprintf("task %s to be %s", ref, want), func() bool {
		st = taskState(t, ref)
		return st.Status == want
	})
	return st
}

// cgroupFile reads a file of the task's cgroup in one v1 controller (or
// the unified tree on a v2 host).
func cgroupFile(t *testing.T, controller, id, name string) string {
	t.Helper()
	for _, base := range []string{"/sys/fs/cgroup/" + controller, "/sys/fs/cgroup"} {
		b, err := os.ReadFile(filepath.Join(base, cgroupParent, id, name))
		if err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("read %s of cgroup %s/%s in %s: not found", name, cgroupParent, id, controller)
	return ""
}

// cgroupGone reports whether the task's cgroup is gone from every hierarchy.
func cgroupGone(t *testing.T, id string) bool {
	t.Helper()
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	return !cgroup.Exists(hier, cgroupParent+"/"+id)
}

// alive reports whether pid exists and has not exited.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// ptr is a pointer to a copy of v, for the spec's optional fields.
func ptr[T any](v T) *T { return &v }
