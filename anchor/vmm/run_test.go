package vmm

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
	"github.com/lf-edge/moor/reaper"
)

// rp is the test process's one reaper, handed to every Run through
// Options.Reaper: two reapers would race for the test's children.
var rp *reaper.Reaper

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == fakeQemuName {
		os.Exit(fakeQemu())
	}
	rp = reaper.NewReaper()
	code := m.Run()
	rp.Close()
	os.Exit(code)
}

// deadline bounds every wait of these tests.
const deadline = 10 * time.Second

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("no %s after %v", what, deadline)
		panic("unreachable")
	}
}

// call is one command the anchor gave the fake device model, with the
// run state the anchor had published when it came.
type call struct {
	name  string
	state devicemodel.RunState
}

// fakePID is the fake device model's PID.
const fakePID = 4242

// fakeDM is a device model that records the anchor's commands and fails
// those named in fail. The test plays its events through events; for a
// container app's VM it plays qemu on the app's ports, handing the
// guest's ends of them to the test through guest.
type fakeDM struct {
	dir    string
	fail   map[string]error
	pidv   int
	events chan<- event
	app    *appChannel
	calls  chan call
	guest  chan [3]net.Conn

	stdout, stderr syncBuffer // the app's output, as the anchor copied it
}

func (f *fakeDM) record(name string) error {
	var st devicemodel.RunState
	if s, err := devicemodel.ReadRunState(map[string]string{devicemodel.AnnotationRunDir: f.dir}); err == nil {
		st = *s
	}
	f.calls <- call{name: name, state: st}
	return f.fail[name]
}

func (f *fakeDM) start(ctx context.Context) error {
	if err := f.record("start"); err != nil {
		return err
	}
	if f.app == nil {
		return nil
	}
	p := qemu.PathsIn(f.dir)
	if err := f.app.listen(p); err != nil {
		return err
	}
	var conns [3]net.Conn
	for i, path := range []string{p.AppControl, p.AppStdout, p.AppStderr} {
		c, err := net.Dial("unix", path)
		if err != nil {
			return err
		}
		conns[i] = c
	}
	if err := f.app.accept(ctx, &f.stdout, &f.stderr); err != nil {
		return err
	}
	f.guest <- conns
	return nil
}

func (f *fakeDM) pid() int                            { return f.pidv }
func (f *fakeDM) powerdown(ctx context.Context) error { return f.record("powerdown") }
func (f *fakeDM) stop(ctx context.Context) error      { return f.record("stop") }
func (f *fakeDM) pause(ctx context.Context) error     { return f.record("pause") }
func (f *fakeDM) resume(ctx context.Context) error    { return f.record("resume") }
func (f *fakeDM) kill()                               { _ = f.record("kill") }

// timer is one wait the anchor asked the fake clock for; the test fires
// it.
type timer struct {
	d    time.Duration
	fire chan time.Time
}

type fakeClock struct{ timers chan timer }

func (c *fakeClock) after(d time.Duration) <-chan time.Time {
	tm := timer{d: d, fire: make(chan time.Time, 1)}
	c.timers <- tm
	return tm.fire
}

type result struct {
	out devicemodel.Outcome
	err error
}

// rig is one Run of the anchor over the fake device model and the fake
// clock, in a temp run directory, driven by signals fed through
// Options.Signals.
type rig struct {
	t     *testing.T
	dir   string
	dm    *fakeDM
	clock *fakeClock
	sigs  chan os.Signal
	done  chan result
	opts  Options
}

const testGrace = time.Hour // never waited for: the fake clock fires it

func newRig(t *testing.T, vm *devicemodel.VM) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{
		t: t, dir: dir, clock: &fakeClock{timers: make(chan timer, 8)},
		dm:   &fakeDM{dir: dir, pidv: fakePID, fail: map[string]error{}, calls: make(chan call, 16), guest: make(chan [3]net.Conn, 1)},
		sigs: make(chan os.Signal, 1), done: make(chan result, 1),
	}
	r.opts = Options{VM: vm, Dir: dir, Grace: testGrace, Reaper: rp, Signals: r.sigs, after: r.clock.after,
		newBackend: func(o Options, _ *reaper.Reaper, events chan<- event, app *appChannel) backend {
			r.dm.events, r.dm.app = events, app
			return r.dm
		}}
	return r
}

// run starts Run; a stale run state is left for it to remove first.
func (r *rig) run() *rig {
	stale := devicemodel.RunState{State: devicemodel.GuestShutdown, End: devicemodel.EndCrashed, Reason: "an earlier run"}
	if err := devicemodel.WriteRunState(r.dir, stale); err != nil {
		r.t.Fatal(err)
	}
	go func() {
		out, err := Run(context.Background(), r.opts)
		r.done <- result{out, err}
	}()
	return r
}

func tcgVM() *devicemodel.VM {
	return &devicemodel.VM{Name: "guest", Hypervisor: devicemodel.TCG}
}

// expect waits for the anchor's next command to the device model.
func (r *rig) expect(name string) call {
	r.t.Helper()
	c := await(r.t, r.dm.calls, "command "+name)
	if c.name != name {
		r.t.Fatalf("the device model was asked to %s, want %s", c.name, name)
	}
	return c
}

// timer waits for the anchor to arm a timer of d.
func (r *rig) timer(d time.Duration) timer {
	r.t.Helper()
	tm := await(r.t, r.clock.timers, "timer of "+d.String())
	if tm.d != d {
		r.t.Fatalf("the anchor armed a timer of %v, want %v", tm.d, d)
	}
	return tm
}

func (r *rig) send(ev event) { r.dm.events <- ev }

func (r *rig) signal(sig unix.Signal) { r.sigs <- sig }

// started runs the anchor up to a running guest.
func (r *rig) started() {
	r.t.Helper()
	c := r.expect("start")
	if c.state.State != devicemodel.GuestStarting || c.state.Hypervisor == "" || c.state.End != "" {
		r.t.Fatalf("run state at start %+v, want starting, the stale one gone", c.state)
	}
	r.send(event{state: devicemodel.GuestRunning})
	r.waitState(func(st devicemodel.RunState) bool {
		return st.State == devicemodel.GuestRunning && st.DeviceModelPID == r.dm.pidv
	}, "running")
}

// waitState polls the run state file until ok says it is what the step
// should have written.
func (r *rig) waitState(ok func(devicemodel.RunState) bool, what string) devicemodel.RunState {
	r.t.Helper()
	end := time.Now().Add(deadline)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		st, err := devicemodel.ReadRunState(map[string]string{devicemodel.AnnotationRunDir: r.dir})
		if err == nil && ok(*st) {
			return *st
		}
		if time.Now().After(end) {
			r.t.Fatalf("run state %+v (%v), want %s", st, err, what)
		}
		time.Sleep(delay)
	}
}

// ended waits for Run's end and checks it and the last run state.
func (r *rig) ended(end devicemodel.End, state devicemodel.GuestState, reason string) result {
	r.t.Helper()
	res := await(r.t, r.done, "end of Run")
	if res.out.End != end {
		r.t.Errorf("Run ended %s (%v), want %s", res.out.End, res.err, end)
	}
	st := r.waitState(func(devicemodel.RunState) bool { return true }, "a run state")
	if st.End != end || st.State != state || st.Reason != reason {
		r.t.Errorf("last run state %+v, want %s, end %s, reason %q", st, state, end, reason)
	}
	select {
	case c := <-r.dm.calls:
		r.t.Errorf("the device model was asked to %s after the last expected command", c.name)
	default:
	}
	return res
}

// SIGTERM asks the guest to power down and arms the grace; a second
// SIGTERM asks again without a second grace. The guest powering off ends
// the run as a poweroff once qemu has quit.
func TestRunACPIStop(t *testing.T) {
	r := newRig(t, tcgVM()).run()
	r.started()
	r.signal(unix.SIGTERM)
	if c := r.expect("powerdown"); c.state.State != devicemodel.GuestRunning {
		t.Errorf("run state at powerdown %+v", c.state)
	}
	r.timer(testGrace)
	r.signal(unix.SIGINT)
	r.expect("powerdown")
	r.send(event{state: devicemodel.GuestShutdown, reason: "guest-shutdown"})
	if c := r.expect("stop"); c.state.State != devicemodel.GuestShutdown || c.state.Reason != "guest-shutdown" {
		t.Errorf("run state at the stop of a guest that powered off %+v", c.state)
	}
	r.timer(killAfter)
	r.send(event{gone: true, clean: true, state: devicemodel.GuestShutdown, reason: "qemu exited with status 0"})
	res := r.ended(devicemodel.EndPoweroff, devicemodel.GuestShutdown, "guest-shutdown")
	if res.err != nil || res.out.ExitCode() != 0 {
		t.Errorf("Run = %d, %v", res.out.ExitCode(), res.err)
	}
	if len(r.clock.timers) != 0 {
		t.Errorf("%d timers more than the grace and the kill", len(r.clock.timers))
	}
}

// A guest that ignores the powerdown is stopped hard once the grace is
// over, and the device model killed once the stop had its time; a
// SIGTERM meanwhile changes nothing.
func TestRunForcedAfterGrace(t *testing.T) {
	r := newRig(t, tcgVM()).run()
	r.started()
	r.signal(unix.SIGTERM)
	r.expect("powerdown")
	r.timer(testGrace).fire <- time.Now()
	r.expect("stop")
	kill := r.timer(killAfter)
	r.signal(unix.SIGTERM)
	r.signal(unix.SIGUSR1) // the next command is the pause's: the SIGTERM asked nothing
	r.expect("pause")
	kill.fire <- time.Now()
	r.expect("kill")
	r.send(event{gone: true, state: devicemodel.GuestShutdown, reason: "qemu killed by SIGKILL"})
	res := r.ended(devicemodel.EndForced, devicemodel.GuestShutdown, "guest ignored the powerdown for 1h0m0s")
	if res.out.ExitCode() != 3 {
		t.Errorf("exit code %d, want 3", res.out.ExitCode())
	}
}

// A guest that cannot be asked to power down (its QMP socket is gone) is
// stopped at once, not after the grace, and killed at once when it cannot
// be stopped either.
func TestRunPowerdownFailedStopsAtOnce(t *testing.T) {
	r := newRig(t, tcgVM())
	errDeaf := errors.New("qmp is not connected")
	r.dm.fail["powerdown"], r.dm.fail["stop"] = errDeaf, errDeaf
	r.run().started()
	r.signal(unix.SIGTERM)
	r.expect("powerdown")
	r.expect("stop")
	r.expect("kill")
	r.send(event{gone: true, state: devicemodel.GuestShutdown, reason: "qemu killed by SIGKILL"})
	r.ended(devicemodel.EndForced, devicemodel.GuestShutdown, "powerdown failed: "+errDeaf.Error())
	if len(r.clock.timers) != 0 {
		t.Error("the anchor armed a grace for a guest it could not ask to power down")
	}
}

// SIGUSR1 pauses the guest and SIGUSR2 resumes it; the run state follows
// what the device model reports. A failed pause changes nothing.
func TestRunPauseResume(t *testing.T) {
	r := newRig(t, tcgVM()).run()
	r.started()
	r.signal(unix.SIGUSR1)
	r.expect("pause")
	r.send(event{state: devicemodel.GuestPaused})
	r.waitState(func(st devicemodel.RunState) bool { return st.State == devicemodel.GuestPaused }, "paused")
	r.signal(unix.SIGUSR2)
	if c := r.expect("resume"); c.state.State != devicemodel.GuestPaused {
		t.Errorf("run state at resume %+v", c.state)
	}
	r.send(event{state: devicemodel.GuestRunning})
	r.waitState(func(st devicemodel.RunState) bool { return st.State == devicemodel.GuestRunning }, "running again")
	r.dm.fail["pause"] = errors.New("qmp error: no")
	r.signal(unix.SIGUSR1)
	r.expect("pause")
	r.signal(unix.SIGTERM)
	r.expect("powerdown")
	r.send(event{state: devicemodel.GuestShutdown, reason: "guest-shutdown"})
	r.expect("stop")
	r.send(event{gone: true, clean: true, reason: "qemu exited with status 0"})
	r.ended(devicemodel.EndPoweroff, devicemodel.GuestShutdown, "guest-shutdown")
}

// qemu dying by itself ends the run as a crash with its reason.
func TestRunDeviceModelDies(t *testing.T) {
	r := newRig(t, tcgVM()).run()
	r.started()
	r.send(event{gone: true, state: devicemodel.GuestShutdown, reason: "qemu killed by SIGSEGV"})
	res := r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "qemu killed by SIGSEGV")
	if res.err != nil || res.out.ExitCode() != 2 {
		t.Errorf("Run = %d, %v; want 2", res.out.ExitCode(), res.err)
	}
}

// Even an exit 0 of qemu nobody asked to stop is a crash; a Xen domain
// that vanishes by itself was powered off from inside.
func TestRunUnaskedExit(t *testing.T) {
	r := newRig(t, tcgVM()).run()
	r.started()
	r.send(event{gone: true, clean: true, reason: "qemu exited with status 0"})
	r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "qemu exited with status 0")

	r = newRig(t, &devicemodel.VM{Name: "dom", Hypervisor: devicemodel.Xen}).run()
	r.started()
	r.send(event{gone: true, clean: true, reason: "domain is gone"})
	r.ended(devicemodel.EndPoweroff, devicemodel.GuestShutdown, "domain is gone")
}

// A guest that crashes is stopped and ends the run as a crash; what the
// device model reports meanwhile is not published.
func TestRunGuestCrashed(t *testing.T) {
	r := newRig(t, tcgVM()).run()
	r.started()
	r.send(event{state: devicemodel.GuestCrashed, reason: "guest-panicked"})
	r.expect("stop")
	r.send(event{state: devicemodel.GuestRunning})
	r.send(event{gone: true, clean: true, reason: "qemu exited with status 0"})
	r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "guest-panicked")
}

// A device model that fails to start is killed; the reason of its exit,
// when it comes within killAfter, goes before the start's error.
func TestRunStartFails(t *testing.T) {
	r := newRig(t, tcgVM())
	r.dm.fail["start"] = errors.New("dial qmp: deadline exceeded")
	r.run()
	r.expect("start")
	r.expect("kill")
	r.timer(killAfter)
	r.send(event{state: devicemodel.GuestRunning}) // not its end: still waited for
	r.send(event{gone: true, reason: "qemu exited with status 1"})
	res := r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "qemu exited with status 1: dial qmp: deadline exceeded")
	if !errors.Is(res.err, r.dm.fail["start"]) {
		t.Errorf("Run's error %v, want the start's", res.err)
	}

	// No exit within killAfter: the start's error alone.
	r = newRig(t, tcgVM())
	r.dm.fail["start"] = errors.New("continue guest: qemu run state prelaunch")
	r.run()
	r.expect("start")
	r.expect("kill")
	r.timer(killAfter).fire <- time.Now()
	r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "continue guest: qemu run state prelaunch")

	// No process started (xl, or qemu not found): no wait at all.
	r = newRig(t, tcgVM())
	r.dm.pidv = 0
	r.dm.fail["start"] = errors.New("find qemu: not found")
	r.run()
	r.expect("start")
	r.expect("kill")
	r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "find qemu: not found")
	if len(r.clock.timers) != 0 {
		t.Error("the anchor waited for the exit of a device model that never started")
	}
}

// A container app's VM: the anchor passes SIGTERM, SIGINT, SIGHUP and
// SIGQUIT on to the app (SIGTERM arming the grace, with no powerdown),
// publishes the app's PID and exit, acks the exit, copies its output and
// exits with its status.
func TestRunApp(t *testing.T) {
	r := newRig(t, &devicemodel.VM{Name: "app", Hypervisor: devicemodel.TCG, App: true}).run()
	r.started()
	conns := await(t, r.dm.guest, "the app's ports")
	guest := bufio.NewReader(conns[0])
	readMsg := func(want string) {
		t.Helper()
		_ = conns[0].SetReadDeadline(time.Now().Add(deadline))
		line, err := guest.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != want {
			t.Fatalf("the guest init read %q, %v, want %q", line, err, want)
		}
	}
	conns[0].Write([]byte("started 42\n"))
	r.waitState(func(st devicemodel.RunState) bool { return st.AppPID == 42 }, "the app's PID")
	r.signal(unix.SIGHUP)
	readMsg("signal 1")
	r.signal(unix.SIGQUIT)
	readMsg("signal 3")
	r.signal(unix.SIGTERM)
	readMsg("signal 15")
	r.timer(testGrace)
	conns[1].Write([]byte("out of the app\n"))
	conns[2].Write([]byte("err of the app\n"))
	conns[0].Write([]byte("bogus\nexit code 3\n"))
	readMsg("ack")
	r.waitState(func(st devicemodel.RunState) bool { return st.AppExit != nil && st.AppExit.Code == 3 }, "the app's exit")
	for _, c := range conns {
		c.Close()
	}
	r.send(event{gone: true, clean: true, reason: "qemu exited with status 0"})
	res := r.ended(devicemodel.EndPoweroff, devicemodel.GuestShutdown, "qemu exited with status 0")
	if res.out.ExitCode() != 3 || res.out.AppExit == nil || res.out.AppExit.Error != "" {
		t.Errorf("outcome %+v, exit code %d, want the app's 3", res.out, res.out.ExitCode())
	}
	if r.dm.stdout.String() != "out of the app\n" || r.dm.stderr.String() != "err of the app\n" {
		t.Errorf("the app's stdout %q, stderr %q", r.dm.stdout.String(), r.dm.stderr.String())
	}
}

// The guest init's failure before the app ran is its exit's error; an
// app VM whose guest reported no exit exits 255, or 137 when forced.
func TestRunAppFailures(t *testing.T) {
	vm := &devicemodel.VM{Name: "app", Hypervisor: devicemodel.TCG, App: true}
	r := newRig(t, vm).run()
	r.started()
	conns := await(t, r.dm.guest, "the app's ports")
	conns[0].Write([]byte("error mount root: no such device\nexit code 125\n"))
	st := r.waitState(func(st devicemodel.RunState) bool { return st.AppExit != nil }, "the app's exit")
	if st.AppExit.Code != 125 || st.AppExit.Error != "mount root: no such device" {
		t.Errorf("app exit %+v", st.AppExit)
	}
	for _, c := range conns {
		c.Close()
	}
	r.send(event{state: devicemodel.GuestShutdown, reason: "guest-shutdown"}) // the guest init powered off
	r.expect("stop")
	r.send(event{gone: true, clean: true, reason: "qemu exited with status 0"})
	if res := r.ended(devicemodel.EndPoweroff, devicemodel.GuestShutdown, "guest-shutdown"); res.out.ExitCode() != 125 {
		t.Errorf("exit code %d, want 125", res.out.ExitCode())
	}

	r = newRig(t, vm).run()
	r.started()
	for _, c := range await(t, r.dm.guest, "the app's ports") {
		c.Close()
	}
	r.send(event{gone: true, reason: "qemu killed by SIGSEGV"})
	if res := r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "qemu killed by SIGSEGV"); res.out.ExitCode() != devicemodel.ExitAppLost {
		t.Errorf("exit code %d, want %d", res.out.ExitCode(), devicemodel.ExitAppLost)
	}
}

// Without Options.Signals the anchor takes the process's own signals.
func TestRunProcessSignals(t *testing.T) {
	r := newRig(t, tcgVM())
	r.opts.Signals = nil
	r.run().started()
	if err := unix.Kill(os.Getpid(), unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	r.expect("pause")
	r.send(event{gone: true, reason: "qemu killed by SIGKILL"})
	r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "qemu killed by SIGKILL")
}

func TestRunNeedsVMAndDir(t *testing.T) {
	if _, err := Run(context.Background(), Options{Dir: t.TempDir()}); err == nil {
		t.Error("Run without a VM did not fail")
	}
	if _, err := Run(context.Background(), Options{VM: tcgVM()}); err == nil {
		t.Error("Run without a run directory did not fail")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
