package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/rootfs"
)

// The host range a test task's IDs 0-65535 map to.
const (
	usernsHostID = 100000
	usernsSize   = 65536
)

// withUserNS gives the bundle's task a user namespace of its own whose
// IDs map to usernsHostID on.
func withUserNS(b *bundle) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: usernsHostID, Size: usernsSize}}
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings, b.Spec.Linux.GIDMappings = m, m
}

// reachableRun lets a task's root, an unprivileged host user, reach the
// state root for the test's length: the run's own temporary directory,
// above it, is 0700. moor makes the state root itself searchable.
func reachableRun(t *testing.T) {
	t.Helper()
	dir := filepath.Dir(stateRoot)
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
}

// TestUsernsRootIsUnprivileged: a task's root is ID 0 inside and the
// mapped host ID outside (its anchor's /proc status); its root filesystem,
// owned by the host's root, is usable without a chown (an idmapped mount:
// it is owned by the task's root inside); what it writes to a volume is
// owned by the mapped host ID; a host file it does not own cannot be
// written; ps, state, info, kill and stop by the anchor's PID work as for
// any task.
func TestUsernsRootIsUnprivileged(t *testing.T) {
	reachableRun(t)
	vol, host := t.TempDir(), t.TempDir()
	if err := os.Chown(vol, usernsHostID, usernsHostID); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(host, "f")
	if err := os.WriteFile(hostFile, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBundle(t, "sh", "-c", `trap 'echo usr1 > /vol/usr1' USR1
trap 'exit 7' TERM
id -u > /vol/id
stat -c %u /bin/busybox > /vol/rootowner
echo hi > /vol/file
if echo x >> /host/f || touch /host/new; then echo wrote > /vol/host; else echo denied > /vol/host; fi
echo ready > /vol/ready
sleep 100000 &
while :; do wait; done`)
	withUserNS(b)
	for dst, src := range map[string]string{"/vol": vol, "/host": host} {
		b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rw"}})
	}
	pid := runDetached(t, b)
	volFile := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(vol, name))
		return strings.TrimSpace(string(b))
	}
	waitFor(t, 10*time.Second, "the task to be ready", func() bool { return volFile("ready") != "" || !alive(pid) })
	for name, want := range map[string]string{"ready": "ready", "id": "0", "rootowner": "0", "host": "denied"} {
		if got := volFile(name); got != want {
			t.Errorf("inside, %s: %q, want %q", name, got, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(vol, "file"), &st); err != nil || st.Uid != usernsHostID || st.Gid != usernsHostID {
		t.Errorf("a file the task wrote to its volume: owner %d:%d (%v), want %d:%d", st.Uid, st.Gid, err, usernsHostID, usernsHostID)
	}
	if b, _ := os.ReadFile(hostFile); string(b) != "host\n" {
		t.Errorf("the host's file was written: %q", b)
	}
	if uid := procUID(t, pid); uid != strconv.Itoa(usernsHostID) {
		t.Errorf("the anchor's host UID is %s, want %d", uid, usernsHostID)
	}
	checkControlByPID(t, b.ID, pid, func() bool { return volFile("usr1") == "usr1" })
}

// procUID is the real UID /proc/<pid>/status gives.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			return f[1]
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return ""
}

// checkControlByPID drives the task by its anchor's PID: state, ps and
// info find it, kill sends SIGUSR1 (usr1 says when the task saw it), stop ends
// it (its TERM trap exits 7), delete removes it.
func checkControlByPID(t *testing.T, id string, pid int, usr1 func() bool) {
	t.Helper()
	ref := strconv.Itoa(pid)
	if st := taskState(t, ref); st.ID != id || st.Status != lifecycle.Running {
		t.Fatalf("state by PID: %s %s, want %s running", st.ID, st.Status, id)
	}
	if out := mustMoor(t, "ps", ref); !strings.Contains(out, "\n"+ref+"\t") && !strings.Contains(out, "\n"+ref+" ") {
		t.Errorf("ps by PID does not list the anchor %d:\n%s", pid, out)
	}
	if out := mustMoor(t, "info", ref); !strings.Contains(out, `"id": "`+id+`"`) || !strings.Contains(out, `"pid": `+ref) {
		t.Errorf("info by PID does not show %s with anchor %d:\n%s", id, pid, out)
	}
	mustMoor(t, "kill", ref, "USR1")
	waitFor(t, 10*time.Second, "the task to see SIGUSR1", usr1)
	mustMoor(t, "stop", "--timeout", "10s", ref)
	if alive(pid) {
		t.Fatalf("anchor %d alive after stop", pid)
	}
	waitStatus(t, id, lifecycle.Stopped)
	mustMoor(t, "delete", id)
}

// TestUsernsWritableRoot: a writable root (an overlay on the idmapped
// root volume) is the task root's own: it writes a file of the image and
// makes a directory at /, and both are owned by its root.
func TestUsernsWritableRoot(t *testing.T) {
	reachableRun(t)
	b := newBundle(t, "sh", "-c", "echo hi > /etc/motd && mkdir /made && stat -c %u /etc/motd /made / && id -u")
	withUserNS(b)
	b.Spec.Root.Readonly = false
	b.Spec.Annotations = map[string]string{rootfs.WritableAnnotation: "true"}
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	r := moor(t, "run", "--bundle", b.Dir, b.ID)
	if r.Code != 0 || strings.Join(strings.Fields(r.Stdout), " ") != "0 0 0 0" {
		t.Fatalf("run: %v, want owners 0 0 0 and id 0", r)
	}
	if _, err := os.Stat(filepath.Join(busyboxRoot, "made")); !os.IsNotExist(err) {
		t.Fatalf("the root volume was written: %v", err)
	}
}

// TestUsernsRefused: a task whose root its root user could not reach, or
// whose root lies on a filesystem that cannot be idmapped (an overlay),
// is refused with an error naming the problem, and nothing is made.
func TestUsernsRefused(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		b := newBundle(t, "true")
		withUserNS(b)
		createRefused(t, b, "host user 100000 cannot search "+filepath.Dir(stateRoot)+" (mode 0700")
	})
	t.Run("no idmap on overlay", func(t *testing.T) {
		reachableRun(t)
		b := newBundle(t, "true")
		withUserNS(b)
		b.Spec.Root.Path = overlayRoot(t)
		createRefused(t, b, "cannot idmap "+b.Spec.Root.Path+" (filesystem overlay)")
	})
}

// createRefused checks that creating b fails with want in the error and
// leaves no trace.
func createRefused(t *testing.T, b *bundle, want string) {
	t.Helper()
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	r := moor(t, "create", "--bundle", b.Dir, b.ID)
	if r.Code == 0 || !strings.Contains(r.Stderr, want) {
		t.Fatalf("create: %v, want an error with %q", r, want)
	}
	checkNoTrace(t, b.ID)
}

// overlayRoot mounts an overlay of the busybox root in a temporary
// directory of the test's own, unmounted when the test ends.
func overlayRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(dir, "merged")
	data := "lowerdir=" + busyboxRoot + ",upperdir=" + filepath.Join(dir, "upper") + ",workdir=" + filepath.Join(dir, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, data); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	return merged
}
