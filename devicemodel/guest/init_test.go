package guest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/reaper"
)

// rp is the test process's one reaper: the apps of these tests are its
// children.
var rp *reaper.Reaper

// execConfigEnv, in the environment, makes the test binary the exec stage
// of the configuration it names, with / as the app's root.
const execConfigEnv = "MOOR_TEST_GUEST_EXEC_CONFIG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(execConfigEnv); cfg != "" {
		os.Exit(execStage(cfg, "/", os.Stderr))
	}
	rp = reaper.NewReaper()
	code := m.Run()
	rp.Close()
	os.Exit(code)
}

// deadline bounds every wait of these tests.
const deadline = 10 * time.Second

// fakeKernel records what the guest init asks of the kernel, its paths
// as the guest sees them, and fails the calls fail names (a mount by its
// target, a module by its file name). It kills only the app, the test's
// child.
type fakeKernel struct {
	root string
	fail map[string]error

	mu    sync.Mutex
	calls []string
}

func (k *fakeKernel) record(key, call string, args ...any) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := fmt.Sprintf(call, args...)
	if k.root != "" {
		c = strings.ReplaceAll(c, k.root, "")
	}
	k.calls = append(k.calls, c)
	return k.fail[key]
}

func (k *fakeKernel) rel(p string) string {
	if r := strings.TrimPrefix(p, k.root); r != "" {
		return r
	}
	return "/"
}

func (k *fakeKernel) Mount(source, target, fstype string, flags uintptr, data string) error {
	return k.record(k.rel(target), "mount(%q, %q, %q, %#x, %q)", source, target, fstype, flags, data)
}

func (k *fakeKernel) FinitModule(fd int, params string, flags int) error {
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err
	}
	return k.record(filepath.Base(p), "finit_module(%s)", filepath.Base(p))
}

func (k *fakeKernel) Sethostname(name []byte) error {
	return k.record("hostname", "sethostname(%s)", name)
}

func (k *fakeKernel) Kill(pid int, sig unix.Signal) error {
	if pid <= 0 {
		return k.record("kill", "kill(%d, %s)", pid, unix.SignalName(sig))
	}
	_ = k.record("kill", "kill(app, %s)", unix.SignalName(sig))
	return unix.Kill(pid, sig) // the app: the test's child, not reaped yet
}

func (k *fakeKernel) Reboot(cmd int) error { return k.record("reboot", "reboot(%#x)", cmd) }
func (k *fakeKernel) Sync()                { _ = k.record("sync", "sync()") }

func (k *fakeKernel) called() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.calls)
}

// newGuest is a guest init over a temp root with /dev/null and the fake
// kernel; its exec stage is a script that runs app (sh).
func newGuest(t *testing.T, app string) (*guest, *fakeKernel) {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "dev/null"), "", 0o644)
	self := filepath.Join(t.TempDir(), "moor-guest")
	write(t, self, "#!/bin/sh\n"+app+"\n", 0o755)
	k := &fakeKernel{root: root, fail: map[string]error{}}
	return &guest{root: root, sys: k, self: self}, k
}

func write(t *testing.T, file, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func checkCalls(t *testing.T, k *fakeKernel, want ...string) {
	t.Helper()
	if got := k.called(); !slices.Equal(got, want) {
		t.Errorf("the kernel was asked\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// /dev, /proc and /sys are mounted, one mounted already (EBUSY) being
// fine and any other failure not.
func TestEarlyMounts(t *testing.T) {
	g, k := newGuest(t, "")
	k.fail["/dev"] = unix.EBUSY
	if err := g.earlyMounts(); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("devtmpfs", "/dev", "devtmpfs", 0xa, "")`,
		`mount("proc", "/proc", "proc", 0xa, "")`,
		`mount("sysfs", "/sys", "sysfs", 0xa, "")`)
	k.fail["/proc"] = unix.EPERM
	if err := g.earlyMounts(); !errors.Is(err, unix.EPERM) {
		t.Errorf("a failed mount of /proc: %v", err)
	}
}

// Modules load in order; one loaded already is fine.
func TestLoadModules(t *testing.T) {
	g, k := newGuest(t, "")
	for _, m := range []string{"9p.ko", "virtio_console.ko"} {
		write(t, filepath.Join(g.root, "lib/modules", m), "", 0o644)
	}
	k.fail["9p.ko"] = unix.EEXIST
	if err := g.loadModules([]string{"/lib/modules/9p.ko", "/lib/modules/virtio_console.ko"}); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k, "finit_module(9p.ko)", "finit_module(virtio_console.ko)")
	k.fail["virtio_console.ko"] = unix.ENOEXEC
	if err := g.loadModules([]string{"/lib/modules/virtio_console.ko"}); !errors.Is(err, unix.ENOEXEC) {
		t.Errorf("a module that fails: %v", err)
	}
	if err := g.loadModules([]string{"/lib/modules/missing.ko"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing module: %v", err)
	}
}

// A port is found by the name the virtio-serial driver gives it and
// opened at its device node; one that does not show up fails.
func TestFindPort(t *testing.T) {
	g, _ := newGuest(t, "")
	ports := filepath.Join(g.root, portsDir)
	write(t, filepath.Join(ports, "vport1p1/name"), devicemodel.PortStdout+"\n", 0o644)
	write(t, filepath.Join(ports, "vport1p2/name"), devicemodel.PortControl+"\n", 0o644)
	write(t, filepath.Join(ports, "vport1p3/name"), devicemodel.PortStderr+"\n", 0o644)
	write(t, filepath.Join(g.root, "dev/vport1p1"), "", 0o644)
	write(t, filepath.Join(g.root, "dev/vport1p2"), "", 0o644)
	f, err := g.findPort(devicemodel.PortControl, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f.Name() != filepath.Join(g.root, "dev/vport1p2") {
		t.Errorf("the control port opened %s", f.Name())
	}
	if _, err := g.findPort(devicemodel.PortStderr, 0); err == nil { // no device node
		t.Error("a port without its device node was opened")
	}
	if _, err := g.findPort("org.example.other", time.Millisecond); err == nil {
		t.Error("a port nobody made was found")
	}
}

const ninep = "trans=virtio,version=9p2000.L,msize=262144"

// mountApp mounts the app's root and its mounts below it: a kernel file
// system that fails is left out, a share or bind that fails is an error.
func TestMountAppWritableRoot(t *testing.T) {
	g, k := newGuest(t, "")
	k.fail["/app/sys/fs/cgroup"] = unix.ENODEV
	cfg := &Config{Root: Mount{Type: MountType9p, Source: "moor-root"}, Mounts: []Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec"}},
		{Destination: "/dev", Type: MountTypeBind, Source: "/dev", Options: []string{"rbind", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup"},
		{Destination: "/data", Type: MountType9p, Source: "moor-vol0", Options: []string{"sync"}},
	}}
	if err := g.mountApp(cfg); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("moor-root", "/app", "9p", 0x0, "`+ninep+`")`,
		`mount("proc", "/app/proc", "proc", 0xa, "")`,
		`mount("/dev", "/app/dev", "", 0x5000, "")`,
		`mount("", "/app/dev", "", 0x5021, "")`,
		`mount("cgroup", "/app/sys/fs/cgroup", "cgroup2", 0x0, "")`,
		`mount("moor-vol0", "/app/data", "9p", 0x10, "`+ninep+`")`)
	if !isDir(filepath.Join(g.root, "app/data")) {
		t.Error("the guest made no mount point for /data in the writable root")
	}
	k.fail["/app/data"] = unix.ENOENT
	if err := g.mountApp(cfg); !errors.Is(err, errMount) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("a share that fails: %v", err)
	}
	k.fail["/app/dev"] = unix.EPERM
	if err := g.mountApp(cfg); !errors.Is(err, errMount) {
		t.Errorf("a bind that fails: %v", err)
	}
}

// A root the app writes is the lower layer of an overlay on a tmpfs.
func TestMountAppRootOverlay(t *testing.T) {
	g, k := newGuest(t, "")
	cfg := &Config{Root: Mount{Type: MountType9p, Source: "moor-root"}, RootOverlay: true,
		Mounts: []Mount{{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"}}}
	if err := g.mountApp(cfg); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("moor-root", "/lower", "9p", 0x1, "`+ninep+`")`,
		`mount("tmpfs", "/rw", "tmpfs", 0x0, "mode=755")`,
		`mount("overlay", "/app", "overlay", 0x0, "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work")`,
		`mount("tmpfs", "/app/tmp", "tmpfs", 0x0, "")`)
	for _, d := range []string{"rw/upper", "rw/work"} {
		if !isDir(filepath.Join(g.root, d)) {
			t.Errorf("no overlay %s", d)
		}
	}
	k.fail["/rw"] = unix.ENOMEM
	if err := g.mountApp(cfg); !errors.Is(err, errMount) {
		t.Errorf("an overlay whose tmpfs fails: %v", err)
	}
}

// A read-only root that lacks a mount point is moved below an overlay
// whose tmpfs holds it, and made read-only again once the mounts are
// made; one that has them all is mounted as it is.
func TestMountAppReadOnlyRoot(t *testing.T) {
	g, k := newGuest(t, "")
	mkdirs(t, g.root, "app/proc") // the share's content, as mounted
	cfg := &Config{Root: Mount{Type: MountType9p, Source: "moor-root", Options: []string{"ro"}}, Mounts: []Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/data", Type: MountType9p, Source: "moor-vol0"},
	}}
	if err := g.mountApp(cfg); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("moor-root", "/app", "9p", 0x1, "`+ninep+`")`,
		`mount("/app", "/lower", "", 0x2000, "")`,
		`mount("tmpfs", "/rw", "tmpfs", 0x0, "mode=755")`,
		`mount("overlay", "/app", "overlay", 0x0, "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work")`,
		`mount("proc", "/app/proc", "proc", 0x0, "")`,
		`mount("moor-vol0", "/app/data", "9p", 0x0, "`+ninep+`")`,
		`mount("", "/app", "", 0x1021, "")`)

	g, k = newGuest(t, "")
	mkdirs(t, g.root, "app/proc", "app/data")
	if err := g.mountApp(cfg); err != nil {
		t.Fatal(err)
	}
	checkCalls(t, k,
		`mount("moor-root", "/app", "9p", 0x1, "`+ninep+`")`,
		`mount("proc", "/app/proc", "proc", 0x0, "")`,
		`mount("moor-vol0", "/app/data", "9p", 0x0, "`+ninep+`")`)

	k.fail["/lower"] = unix.EINVAL
	mkdirs(t, g.root, "app/proc")
	if err := os.Remove(filepath.Join(g.root, "app/data")); err != nil {
		t.Fatal(err)
	}
	if err := g.mountApp(cfg); !errors.Is(err, errMount) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("a root that cannot be moved: %v", err)
	}
}

// socketPair is a connected pair: the guest's end as a file, the anchor's
// as a connection.
func socketPair(t *testing.T) (*os.File, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "anchor")
	defer theirs.Close()
	c, err := net.FileConn(theirs)
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(fds[0]), "control")
	t.Cleanup(func() { ours.Close(); c.Close() })
	return ours, c
}

// anchorEnd plays the anchor on the control port.
type anchorEnd struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (a *anchorEnd) write(lines ...string) {
	a.t.Helper()
	if _, err := a.c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		a.t.Fatal(err)
	}
}

func (a *anchorEnd) read() devicemodel.Message {
	a.t.Helper()
	_ = a.c.SetReadDeadline(time.Now().Add(deadline))
	line, err := a.r.ReadString('\n')
	if err != nil {
		a.t.Fatalf("read control: %v", err)
	}
	m, err := devicemodel.ParseMessage(strings.TrimSpace(line))
	if err != nil {
		a.t.Fatal(err)
	}
	return m
}

func (a *anchorEnd) expect(want devicemodel.Message) {
	a.t.Helper()
	if m := a.read(); m != want {
		a.t.Fatalf("the anchor read %q, want %q", m.String(), want.String())
	}
}

func newControlPair(t *testing.T) (*control, *anchorEnd) {
	f, conn := socketPair(t)
	return newControl(f), &anchorEnd{t: t, c: conn, r: bufio.NewReader(conn)}
}

// The control port turns the anchor's signal and ack lines into events,
// passes over what it does not know, and reports an exit until acked.
func TestControl(t *testing.T) {
	c, a := newControlPair(t)
	a.write("signal 15", "nonsense", "started 3", "signal 1")
	for _, want := range []int{15, 1} {
		if sig := await(t, c.signals); sig != want {
			t.Errorf("signal %d, want %d", sig, want)
		}
	}
	c.send(devicemodel.Message{Kind: devicemodel.MsgStarted, PID: 7})
	a.expect(devicemodel.Message{Kind: devicemodel.MsgStarted, PID: 7})
	a.write("ack")
	exit := devicemodel.Message{Kind: devicemodel.MsgExit, Code: 4}
	c.report(exit) // the ack came first: no wait
	a.expect(exit)
}

func await[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("nothing after %v", deadline)
		panic("unreachable")
	}
}

// outputs are the app's stdout and stderr ports, files the test reads.
func outputs(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	var fs [2]*os.File
	for i := range fs {
		f, err := os.Create(filepath.Join(t.TempDir(), "port"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fs[i] = f
	}
	return fs[0], fs[1]
}

func content(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The app runs through the exec stage with the output ports as its
// stdout and stderr; it is reported started and its exit is returned.
func TestRunAppExits(t *testing.T) {
	g, _ := newGuest(t, `echo "$0 out"; echo err >&2; exit 3`)
	c, a := newControlPair(t)
	out, errOut := outputs(t)
	done := make(chan devicemodel.Message, 1)
	go func() { done <- g.runApp(rp, c, out, errOut) }()
	if m := a.read(); m.Kind != devicemodel.MsgStarted || m.PID <= 0 {
		t.Errorf("first message %q, want started", m.String())
	}
	if exit := await(t, done); exit != (devicemodel.Message{Kind: devicemodel.MsgExit, Code: 3}) {
		t.Errorf("exit %q", exit.String())
	}
	if content(t, out) != g.self+" out\n" || content(t, errOut) != "err\n" {
		t.Errorf("stdout %q, stderr %q", content(t, out), content(t, errOut))
	}
}

// The anchor's signals are passed on to the app.
func TestRunAppSignalled(t *testing.T) {
	g, k := newGuest(t, `exec sleep 60`)
	c, a := newControlPair(t)
	out, errOut := outputs(t)
	done := make(chan devicemodel.Message, 1)
	go func() { done <- g.runApp(rp, c, out, errOut) }()
	a.read() // started
	a.write("signal 15")
	if exit := await(t, done); exit != (devicemodel.Message{Kind: devicemodel.MsgExit, Signal: 15}) {
		t.Errorf("exit %q, want by signal 15", exit.String())
	}
	checkCalls(t, k, "kill(app, SIGTERM)")
}

// A signal before the start stops the app from starting; an exec stage
// that cannot start is the guest init's failure.
func TestRunAppNotStarted(t *testing.T) {
	g, _ := newGuest(t, "exit 0")
	c, a := newControlPair(t)
	out, errOut := outputs(t)
	a.write("signal 2")
	end := time.Now().Add(deadline)
	for len(c.signals) == 0 && time.Now().Before(end) {
		time.Sleep(time.Millisecond)
	}
	if exit := g.runApp(rp, c, out, errOut); exit != (devicemodel.Message{Kind: devicemodel.MsgExit, Signal: 2}) {
		t.Errorf("exit %q, want by signal 2 before the start", exit.String())
	}

	g.self = filepath.Join(t.TempDir(), "missing")
	if exit := g.runApp(rp, c, out, errOut); exit != (devicemodel.Message{Kind: devicemodel.MsgExit, Code: ExitSetup}) {
		t.Errorf("exit %q, want %d", exit.String(), ExitSetup)
	}
	if m := a.read(); m.Kind != devicemodel.MsgError || !strings.Contains(m.Text, "start app") {
		t.Errorf("message %q, want the start's error", m.String())
	}
}

// bootable makes the files the guest init boots from: its configuration,
// a module, and the app's ports (the control port a socket pair).
func bootable(t *testing.T, g *guest, cfg Config) *anchorEnd {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(g.root, ConfigFile), string(b), 0o644)
	write(t, filepath.Join(g.root, "lib/modules/9p.ko"), "", 0o644)
	f, conn := socketPair(t)
	out, errOut := outputs(t)
	ports := map[string]*os.File{devicemodel.PortControl: f, devicemodel.PortStdout: out, devicemodel.PortStderr: errOut}
	g.port = func(name string) (*os.File, error) {
		if p, ok := ports[name]; ok {
			return p, nil
		}
		return nil, fmt.Errorf("no port %s", name)
	}
	return &anchorEnd{t: t, c: conn, r: bufio.NewReader(conn)}
}

var appConfig = Config{
	Modules: []string{"/lib/modules/9p.ko"}, Hostname: "app",
	Root:    Mount{Type: MountType9p, Source: "moor-root"},
	Mounts:  []Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
	Process: Process{Args: []string{"/bin/app"}},
}

// The guest init boots, runs the app, kills what is left, syncs and
// reports the app's exit until the anchor acks it.
func TestGuestRun(t *testing.T) {
	g, k := newGuest(t, "exit 0")
	a := bootable(t, g, appConfig)
	done := make(chan struct{})
	go func() { g.run(rp); close(done) }()
	if m := a.read(); m.Kind != devicemodel.MsgStarted {
		t.Fatalf("first message %q, want started", m.String())
	}
	a.expect(devicemodel.Message{Kind: devicemodel.MsgExit})
	a.write("ack")
	await(t, done)
	checkCalls(t, k,
		`mount("devtmpfs", "/dev", "devtmpfs", 0xa, "")`,
		`mount("proc", "/proc", "proc", 0xa, "")`,
		`mount("sysfs", "/sys", "sysfs", 0xa, "")`,
		"finit_module(9p.ko)",
		`mount("moor-root", "/app", "9p", 0x0, "`+ninep+`")`,
		`mount("proc", "/app/proc", "proc", 0x0, "")`,
		"sethostname(app)",
		"kill(-1, SIGKILL)",
		"sync()")
}

// A failure of the guest init's setup once the control port is open is
// reported as an error and exit status ExitSetup; before it, only logged.
func TestGuestRunSetupFails(t *testing.T) {
	g, k := newGuest(t, "exit 0")
	a := bootable(t, g, appConfig)
	k.fail["/app"] = unix.ENODEV
	done := make(chan struct{})
	go func() { g.run(rp); close(done) }()
	if m := a.read(); m.Kind != devicemodel.MsgError || !strings.Contains(m.Text, "share moor-root") {
		t.Errorf("first message %q, want the mount's error", m.String())
	}
	a.expect(devicemodel.Message{Kind: devicemodel.MsgExit, Code: ExitSetup})
	a.write("ack")
	await(t, done)

	g, k = newGuest(t, "exit 0") // no configuration
	g.run(rp)
	if calls := k.called(); len(calls) != 3 {
		t.Errorf("a guest without configuration did %q, want its early mounts only", calls)
	}
}

// The processes left are those of neither the init nor the kernel.
func TestUserProcesses(t *testing.T) {
	proc := t.TempDir()
	for pid, stat := range map[string]string{
		"1": "1 (init) S 0 1 1", "2": "2 (kthreadd) S 0 0 0", "3": "3 (kworker/0:0) I 2 0 0",
		"10": "10 (sh) S 1 10 10", "12": "12 (a) b) S 10 10 10",
	} {
		write(t, filepath.Join(proc, pid, "stat"), stat+"\n", 0o644)
	}
	mkdirs(t, proc, "11", "sys")
	if n := userProcesses(proc); n != 2 {
		t.Errorf("%d user processes, want 2", n)
	}
}

// execIn runs the exec stage in a child (the test binary) for p, with /
// as the app's root, and returns its output and exit status.
func execIn(t *testing.T, p Process) (string, int) {
	t.Helper()
	b, err := json.Marshal(Config{Process: p})
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "app.json")
	write(t, cfg, string(b), 0o644)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{execConfigEnv + "=" + cfg}
	out, _ := outputs(t) // a file: the reaper, not cmd.Wait, ends the child
	cmd.Stdout, cmd.Stderr = out, out
	done := make(chan reaper.Reaped, 1)
	if err := rp.Start(cmd, func(r reaper.Reaped) { done <- r }); err != nil {
		t.Fatal(err)
	}
	r := await(t, done)
	return content(t, out), r.Code()
}

// The exec stage applies the rlimits, the groups, the user, the umask,
// no_new_privs and the working directory, and executes the app with its
// environment, found in its PATH.
func TestExecStage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the exec stage test needs root: it changes user")
	}
	umask := uint32(0o027)
	p := Process{
		Args: []string{"sh", "-c", `id -u; id -G; ulimit -n; umask; pwd; echo "$FOO"; grep NoNewPrivs /proc/self/status`},
		Env:  []string{"FOO=bar", "PATH=/nonexistent:/usr/bin:/bin"}, Cwd: "/tmp",
		UID: 65534, GID: 65534, AdditionalGids: []uint32{100}, Umask: &umask,
		Rlimits:         []Rlimit{{Type: "RLIMIT_NOFILE", Hard: 200, Soft: 100}},
		NoNewPrivileges: true,
	}
	out, code := execIn(t, p)
	if want := "65534\n65534 100\n100\n0027\n/tmp\nbar\nNoNewPrivs:\t1\n"; code != 0 || out != want {
		t.Errorf("the app ran with\n%s(exit %d), want\n%s", out, code, want)
	}
}

// The exec stage ends as a shell would: 127 for an app not found, 126 for
// one it cannot execute, ExitSetup for a setup that failed.
func TestExecStageFails(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "app")
	write(t, notExec, "#!/bin/sh\n", 0o644)
	for _, c := range []struct {
		name string
		p    Process
		code int
	}{
		{"not found", Process{Args: []string{"no-such-app"}}, ExitNotFound},
		{"not found by path", Process{Args: []string{"/no/such/app"}}, ExitNotFound},
		{"not executable", Process{Args: []string{notExec}}, ExitCannotRun},
		{"unknown rlimit", Process{Args: []string{"true"}, Rlimits: []Rlimit{{Type: "RLIMIT_BOGUS"}}}, ExitSetup},
		{"no working directory", Process{Args: []string{"true"}, Cwd: "/no/such/dir"}, ExitSetup},
		{"no args", Process{}, ExitSetup},
	} {
		out, code := execIn(t, c.p)
		if code != c.code || !strings.HasPrefix(out, "moor-guest: ") {
			t.Errorf("%s: exit %d, output %q; want %d and the reason", c.name, code, out, c.code)
		}
	}
}
