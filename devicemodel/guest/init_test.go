package guest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
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
	c.signals <- await(t, c.signals) // it has come; put back for runApp
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
