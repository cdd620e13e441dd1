package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/lifecycle"
)

// sandbox is one test's own state root and cgroup parent: what a test
// does to the state root's files cannot reach another test's tasks.
type sandbox struct {
	t    *testing.T
	base string // a directory every user may traverse; root is in it
	root string // --root
	cg   string // the cgroup parent of its tasks
}

var sandboxSeq atomic.Int64

// newSandbox makes a sandbox; when the test ends, its tasks are gone and
// nothing is left in its state root.
func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	base, err := os.MkdirTemp("", "moor-stateroot-")
	if err == nil {
		err = os.Chmod(base, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	n := sandboxSeq.Add(1)
	sb := &sandbox{t: t, base: base, root: filepath.Join(base, "state"), cg: fmt.Sprintf("%s-stateroot-%d", cgroupRunParent, n)}
	t.Cleanup(func() {
		var left []string
		_ = filepath.WalkDir(sb.root, func(p string, d os.DirEntry, err error) error {
			if err == nil && p != sb.root {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Errorf("left in the state root: %v", left)
		}
		os.RemoveAll(base)
	})
	return sb
}

func (sb *sandbox) cmd(args ...string) *exec.Cmd {
	return exec.Command(moorBin, append([]string{"--root", sb.root}, args...)...)
}

func (sb *sandbox) moor(args ...string) result {
	sb.t.Helper()
	return runCmd(sb.t, sb.cmd(args...))
}

func (sb *sandbox) must(args ...string) string {
	sb.t.Helper()
	r := sb.moor(args...)
	if r.Code != 0 {
		sb.t.Fatalf("moor %s: %v", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// bundle is newBundle's with the task's cgroup under the sandbox's parent.
func (sb *sandbox) bundle(args ...string) *bundle {
	sb.t.Helper()
	b := newBundle(sb.t, args...)
	b.Spec.Linux.CgroupsPath = sb.cg + "/" + b.ID
	return b
}

// create creates the bundle's task, deleted when the test ends.
func (sb *sandbox) create(b *bundle) {
	sb.t.Helper()
	b.write(sb.t)
	sb.t.Cleanup(func() { sb.moor("delete", "--force", b.ID) })
	sb.must("create", "--bundle", b.Dir, b.ID)
}

// run creates and starts the bundle's task and returns its anchor's PID.
func (sb *sandbox) run(b *bundle) int {
	sb.t.Helper()
	sb.create(b)
	sb.must("start", b.ID)
	return sb.state(b.ID).PID
}

func (sb *sandbox) state(ref string) lifecycle.State {
	sb.t.Helper()
	var st lifecycle.State
	if err := json.Unmarshal([]byte(sb.must("state", ref)), &st); err != nil {
		sb.t.Fatalf("decode state of %s: %v", ref, err)
	}
	return st
}

func (sb *sandbox) list() []lifecycle.State {
	sb.t.Helper()
	var sts []lifecycle.State
	if err := json.Unmarshal([]byte(sb.must("list", "--format", "json")), &sts); err != nil {
		sb.t.Fatalf("decode list: %v", err)
	}
	return sts
}

// taskDir is moor's directory of a task, and containerDir libcontainer's.
func (sb *sandbox) taskDir(id string) string { return filepath.Join(sb.root, ".tasks", "default", id) }
func (sb *sandbox) containerDir(id string) string {
	return filepath.Join(sb.root, "default", id)
}

// cgroupExists reports whether a task's cgroup is there.
func (sb *sandbox) cgroupExists(t *testing.T, id string) bool {
	t.Helper()
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	return cgroup.Exists(hier, sb.cg+"/"+id)
}

// decoy is a directory outside the state root with a file and a
// sub-directory; intact reports whether it still holds exactly those.
func decoy(t *testing.T) (dir string, intact func() bool) {
	t.Helper()
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, func() bool {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		_, err := os.Stat(filepath.Join(dir, "sub", "deeper"))
		return slices.Equal(names, []string{"keep", "sub"}) && err == nil
	}
}

// swapForSymlink puts a symlink to to in dir's place and returns the
// undo, which puts dir back.
func swapForSymlink(t *testing.T, dir, to string) (undo func()) {
	t.Helper()
	aside := filepath.Join(t.TempDir(), "aside")
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(to, dir); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(aside, dir); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStateRootSymlinkedTaskDir: a task directory replaced by a symlink
// (moor's or libcontainer's) is an error naming it: state does not write
// into what it points at, delete --force does not empty it, and list
// shows the name as unknown. Put back, the task deletes as usual.
func TestStateRootSymlinkedTaskDir(t *testing.T) {
	sb := newSandbox(t)
	b := sb.bundle("sleep", "1000")
	pid := sb.run(b)
	elsewhere, intact := decoy(t)

	for _, dir := range []string{sb.taskDir(b.ID), sb.containerDir(b.ID)} {
		undo := swapForSymlink(t, dir, elsewhere)
		if dir == sb.taskDir(b.ID) {
			r := sb.moor("state", b.ID)
			if r.Code == 0 || !strings.Contains(r.Stderr, dir) {
				t.Errorf("state through a symlinked task directory: %v; want an error naming %s", r, dir)
			}
			i := slices.IndexFunc(sb.list(), func(st lifecycle.State) bool { return st.ID == b.ID })
			if sts := sb.list(); i < 0 || sts[i].Status != lifecycle.Unknown || sts[i].Reason == "" {
				t.Errorf("list: %+v; want %s unknown, with the reason", sts, b.ID)
			}
		}
		if r := sb.moor("delete", "--force", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, dir) {
			t.Errorf("delete --force through symlinked %s: %v; want an error naming it", dir, r)
		}
		if !intact() {
			t.Fatalf("the symlink's target %s was written to or emptied through %s", elsewhere, dir)
		}
		undo()
	}
	if !alive(pid) {
		t.Fatal("the task's anchor died while its directory was refused")
	}
	sb.must("delete", "--force", b.ID)
	waitFor(t, 10*time.Second, "the anchor to be gone", func() bool { return !alive(pid) })
}

// TestStateRootRecordOfAnother: a record copied from another task, or
// linked to unrelated JSON, is a corrupt record: state and list show the
// name as unknown with the reason, kill refuses it, and delete --force
// removes only the name's own task (its anchor and cgroup, as its own
// libcontainer state names them), never the task the record names; no
// stray record is written and the name is free again.
func TestStateRootRecordOfAnother(t *testing.T) {
	sb := newSandbox(t)
	a, b := sb.bundle("sleep", "1000"), sb.bundle("sleep", "1000")
	pidA, pidB := sb.run(a), sb.run(b)
	raw, err := os.ReadFile(filepath.Join(sb.taskDir(b.ID), "moor.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sb.taskDir(a.ID), "moor.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}

	if st := sb.state(a.ID); st.ID != a.ID || st.Status != lifecycle.Unknown || st.Reason == "" {
		t.Errorf("state of %s with %s's record: %+v; want %s unknown, with the reason", a.ID, b.ID, st, a.ID)
	}
	var ids []string
	for _, st := range sb.list() {
		ids = append(ids, st.ID+"="+st.Status.String())
	}
	if want := []string{a.ID + "=unknown", b.ID + "=running"}; !slices.Equal(ids, want) {
		t.Errorf("list: %v, want %v", ids, want)
	}
	if r := sb.moor("kill", a.ID, "KILL"); r.Code == 0 {
		t.Errorf("kill of a task with a corrupt record: %v; want it refused", r)
	}
	sb.must("delete", "--force", a.ID)
	waitFor(t, 10*time.Second, a.ID+"'s anchor to be gone", func() bool { return !alive(pidA) })
	if sb.cgroupExists(t, a.ID) {
		t.Errorf("%s's cgroup is left", a.ID)
	}
	if !alive(pidB) || !sb.cgroupExists(t, b.ID) {
		t.Fatalf("delete --force %s reached %s: anchor alive %v, cgroup %v", a.ID, b.ID, alive(pidB), sb.cgroupExists(t, b.ID))
	}
	if st := sb.state(b.ID); st.Status != lifecycle.Running || st.PID != pidB {
		t.Fatalf("state of %s after deleting %s: %+v", b.ID, a.ID, st)
	}

	// A record that is a symlink to unrelated valid JSON.
	c := sb.bundle("sleep", "1000")
	sb.create(c)
	unrelated := filepath.Join(t.TempDir(), "unrelated.json")
	if err := os.WriteFile(unrelated, []byte(`{"unrelated": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(sb.taskDir(c.ID), "moor.json")
	if err := os.Remove(record); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(unrelated, record); err != nil {
		t.Fatal(err)
	}
	if st := sb.state(c.ID); st.Status != lifecycle.Unknown || st.Reason == "" {
		t.Errorf("state with a symlinked record: %+v; want unknown, with the reason", st)
	}
	sb.must("delete", "--force", c.ID)
	if _, err := os.Lstat(filepath.Join(sb.root, ".tasks", "moor.json")); err == nil {
		t.Error("a stray record was written at the top of .tasks")
	}
	if b, err := os.ReadFile(unrelated); err != nil || string(b) != `{"unrelated": true}` {
		t.Errorf("the record's symlink target changed: %q, %v", b, err)
	}
	sb.must("create", "--bundle", c.Dir, c.ID) // the name is free
	sb.must("delete", "--force", c.ID)
	sb.must("delete", "--force", b.ID)
}

// TestStateRootFullDisk: with no space left in the state root, start and
// pause still do what they say and say so (success, with a warning that
// the record could not be saved), and state agrees with them.
func TestStateRootFullDisk(t *testing.T) {
	sb := newSandbox(t)
	if err := os.Mkdir(sb.root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sb.root, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(sb.root, 0); err != nil {
			t.Errorf("unmount the state root: %v", err)
		}
	})
	b := sb.bundle("sleep", "1000")
	sb.create(b)
	filler := filepath.Join(sb.root, "filler")
	fill(t, filler)
	t.Cleanup(func() { os.Remove(filler) }) // before the task's delete
	r := sb.moor("start", b.ID)
	if r.Code != 0 || r.Stderr == "" {
		t.Fatalf("start on a full state root: %v; want success with a warning", r)
	}
	st := sb.state(b.ID)
	if st.Status != lifecycle.Running || st.PID == 0 {
		t.Fatalf("state after start: %+v; want running", st)
	}
	if r := sb.moor("pause", b.ID); r.Code != 0 {
		t.Fatalf("pause on a full state root: %v", r)
	}
	if st := sb.state(b.ID); st.Status != lifecycle.Paused {
		t.Fatalf("state after pause: %+v; want paused", st)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	sb.must("delete", "--force", b.ID)
}

// fill writes path until the file system has no space left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			return
		}
	}
}

// TestStateRootBrokenPipe: a reader that went away (moor list | head)
// ends moor quietly with 0, as runc.
func TestStateRootBrokenPipe(t *testing.T) {
	sb := newSandbox(t)
	b := sb.bundle("sleep", "1000")
	sb.create(b)
	for _, args := range [][]string{{"list"}, {"list", "--format", "json"}, {"state", b.ID}} {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		rd.Close() // every write gets EPIPE
		cmd := sb.cmd(args...)
		out, errf := captureOutput(t, cmd)
		cmd.Stdout = wr
		err = cmd.Run()
		wr.Close()
		if r := finish(t, cmd, err, out, errf); r.Code != 0 || r.Stderr != "" {
			t.Errorf("moor %s into a closed pipe: %v; want exit 0, quietly", strings.Join(args, " "), r)
		}
	}
}

// TestStateRootPermissionDenied: a user who cannot read the state root
// is told so, not that the task does not exist.
func TestStateRootPermissionDenied(t *testing.T) {
	sb := newSandbox(t)
	b := sb.bundle("sleep", "1000")
	sb.create(b)
	// A copy of moor that the user may run.
	bin := filepath.Join(sb.base, "moor")
	src, err := os.Open(moorBin)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err == nil {
		_, err = io.Copy(dst, src)
		dst.Close()
	}
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"state", b.ID}, {"state", "no-such-task"}, {"list"}, {"kill", b.ID, "KILL"}, {"start", b.ID}, {"delete", "--force", b.ID}} {
		cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin, "--root", sb.root}, args...)...)
		r := runCmd(t, cmd)
		if r.Code == 0 || !strings.Contains(r.Stderr, "permission denied") || strings.Contains(r.Stderr, "no such task") {
			t.Errorf("moor %s as an unprivileged user: %v; want permission denied", strings.Join(args, " "), r)
		}
	}
	if st := sb.state(b.ID); st.Status != lifecycle.Created {
		t.Fatalf("the task changed: %+v", st)
	}
}

// TestStateRootSeccompWarning: a seccomp profile that moor must widen
// (statx, when no_new_privs is off) makes create say so.
func TestStateRootSeccompWarning(t *testing.T) {
	sb := newSandbox(t)
	b := sb.bundle("sleep", "1000")
	b.Spec.Process.NoNewPrivileges = false
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActLog}
	b.write(t)
	t.Cleanup(func() { sb.moor("delete", "--force", b.ID) })
	r := sb.moor("create", "--bundle", b.Dir, b.ID)
	if r.Code != 0 || !strings.Contains(r.Stderr, "statx") {
		t.Fatalf("create with a profile that does not name statx: %v; want a warning naming statx", r)
	}
	sb.must("delete", "--force", b.ID)
}

// TestStateRootMountInTaskDir: a removal never crosses a mount: delete
// --force of a task whose directory has a mount in it fails naming it and
// leaves what is mounted there alone; unmounted, the task deletes.
func TestStateRootMountInTaskDir(t *testing.T) {
	sb := newSandbox(t)
	b := sb.bundle("sleep", "1000")
	sb.create(b)
	elsewhere, intact := decoy(t)
	mnt := filepath.Join(sb.taskDir(b.ID), "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(elsewhere, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	if r := sb.moor("delete", "--force", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, mnt) {
		t.Errorf("delete --force with a mount in the task's directory: %v; want an error naming %s", r, mnt)
	}
	if !intact() {
		t.Fatal("the removal went through the mount")
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	sb.must("delete", "--force", b.ID)
}
