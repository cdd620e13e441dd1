package vmm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
)

// fakeQemuName is argv[0]'s base name of the test binary re-executed as
// the fake qemu (TestMain).
const fakeQemuName = "fake-qemu"

// fakeQemuGuest, in the environment, says how the fake qemu's guest
// behaves: "" powers off on the ACPI powerdown, "deaf" ignores it, "die"
// makes qemu exit 1 before its monitors are up.
const fakeQemuGuest = "MOOR_TEST_FAKE_QEMU_GUEST"

// fakeQemu is a qemu without a guest: it serves QMP on the command and the
// event monitors of its working directory (the run directory) and keeps a
// run state that the commands change as qemu's would, with the events
// qemu would send. SIGHUP makes its guest panic. It exits 0 on quit.
func fakeQemu() int {
	guest := os.Getenv(fakeQemuGuest)
	if guest == "die" {
		fmt.Fprintln(os.Stderr, "fake qemu: dying as asked")
		return 1
	}
	dir, err := os.Getwd()
	if err != nil {
		return 1
	}
	p := qemu.PathsIn(dir)
	q := &fakeQemuState{status: "prelaunch", events: make(chan string, 16)}
	cmds, err := net.Listen("unix", p.QMP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake qemu:", err)
		return 1
	}
	events, err := net.Listen("unix", p.Listener)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake qemu:", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	go func() {
		for range hup {
			q.set("guest-panicked", "GUEST_PANICKED", "")
		}
	}()
	go q.serveEvents(events)
	return q.serveCommands(cmds, guest)
}

type fakeQemuState struct {
	mu     sync.Mutex
	status string
	events chan string // lines for the event monitor
}

// set changes the run state and sends the events qemu would.
func (q *fakeQemuState) set(status string, events ...string) {
	q.mu.Lock()
	q.status = status
	q.mu.Unlock()
	for _, ev := range events {
		if ev == "" {
			continue
		}
		data := "{}"
		if ev == "SHUTDOWN" {
			data = `{"guest": true, "reason": "guest-shutdown"}`
		}
		q.events <- fmt.Sprintf(`{"event": %q, "data": %s, "timestamp": {"seconds": 1, "microseconds": 2}}`, ev, data)
	}
}

// accept takes a monitor's one connection and negotiates capabilities.
func accept(l net.Listener) (net.Conn, *bufio.Scanner, error) {
	c, err := l.Accept()
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write([]byte(`{"QMP": {"version": {"qemu": {"major": 9}}, "capabilities": []}}` + "\n")); err != nil {
		return nil, nil, err
	}
	sc := bufio.NewScanner(c)
	if !sc.Scan() {
		return nil, nil, fmt.Errorf("no qmp_capabilities")
	}
	_, err = c.Write([]byte(`{"return": {}}` + "\n"))
	return c, sc, err
}

func (q *fakeQemuState) serveEvents(l net.Listener) {
	c, _, err := accept(l)
	if err != nil {
		return
	}
	for ev := range q.events {
		if _, err := c.Write([]byte(ev + "\n")); err != nil {
			return
		}
	}
}

func (q *fakeQemuState) serveCommands(l net.Listener, guest string) int {
	c, sc, err := accept(l)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake qemu:", err)
		return 1
	}
	for sc.Scan() {
		var cmd struct {
			Execute string `json:"execute"`
		}
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return 1
		}
		reply := `{"return": {}}`
		switch cmd.Execute {
		case "cont":
			q.set("running", "RESUME")
		case "stop":
			q.set("paused", "STOP")
		case "system_powerdown":
			if guest != "deaf" {
				q.set("shutdown", "SHUTDOWN", "STOP") // -no-shutdown: qemu stays
			}
		case "query-status":
			q.mu.Lock()
			reply = fmt.Sprintf(`{"return": {"status": %q, "running": %v}}`, q.status, q.status == "running")
			q.mu.Unlock()
		case "quit":
			_, _ = c.Write([]byte(reply + "\n"))
			return 0
		default:
			reply = fmt.Sprintf(`{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}}`, cmd.Execute)
		}
		if _, err := c.Write([]byte(reply + "\n")); err != nil {
			return 1
		}
	}
	return 0
}

// newQemuRig is a Run of the anchor with the real qemu backend over the
// fake qemu, whose guest behaves as guest says.
func newQemuRig(t *testing.T, guest string) *rig {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), fakeQemuName)
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeQemuGuest, guest)
	r := newRig(t, &devicemodel.VM{Name: "guest", Hypervisor: devicemodel.TCG, MemoryMiB: 64})
	r.opts.newBackend = nil
	r.opts.DeviceModel = bin
	return r
}

func (r *rig) qemuState(want devicemodel.GuestState) devicemodel.RunState {
	r.t.Helper()
	return r.waitState(func(st devicemodel.RunState) bool { return st.State == want && st.DeviceModelPID != 0 }, string(want))
}

// qemu starts with its vCPUs stopped and is let run once both monitors
// are up; SIGUSR1 and SIGUSR2 stop and continue it; SIGTERM presses the
// power button, and the guest's shutdown makes the anchor quit qemu.
func TestRunQemu(t *testing.T) {
	r := newQemuRig(t, "").run()
	r.qemuState(devicemodel.GuestRunning)
	if b, err := os.ReadFile(qemu.PathsIn(r.dir).Config); err != nil || len(b) == 0 {
		t.Errorf("qemu's config %q, %v", b, err)
	}
	r.signal(unix.SIGUSR1)
	r.qemuState(devicemodel.GuestPaused)
	r.signal(unix.SIGUSR2)
	r.qemuState(devicemodel.GuestRunning)
	r.signal(unix.SIGTERM)
	r.timer(testGrace)
	r.timer(killAfter)
	res := r.ended(devicemodel.EndPoweroff, devicemodel.GuestShutdown, "guest-shutdown")
	if res.err != nil {
		t.Error(res.err)
	}
}

// A guest that ignores the powerdown is quit after the grace.
func TestRunQemuDeafGuest(t *testing.T) {
	r := newQemuRig(t, "deaf").run()
	r.qemuState(devicemodel.GuestRunning)
	r.signal(unix.SIGTERM)
	r.timer(testGrace).fire <- time.Now()
	r.timer(killAfter)
	r.ended(devicemodel.EndForced, devicemodel.GuestShutdown, "guest ignored the powerdown for 1h0m0s")
}

// A guest that panics is crashed, and so is a qemu killed from outside.
func TestRunQemuCrashes(t *testing.T) {
	r := newQemuRig(t, "").run()
	st := r.qemuState(devicemodel.GuestRunning)
	if err := unix.Kill(st.DeviceModelPID, unix.SIGHUP); err != nil { // our child, not reaped yet
		t.Fatal(err)
	}
	r.timer(killAfter)
	r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "guest-panicked")

	r = newQemuRig(t, "").run()
	st = r.qemuState(devicemodel.GuestRunning)
	if err := unix.Kill(st.DeviceModelPID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "qemu killed by SIGKILL")
}

// A qemu that exits before its monitors are up fails the start, with its
// exit as the reason.
func TestRunQemuDiesAtStart(t *testing.T) {
	r := newQemuRig(t, "die").run()
	r.timer(killAfter)
	res := await(t, r.done, "end of Run")
	st := r.waitState(func(devicemodel.RunState) bool { return true }, "a run state")
	if res.err == nil || res.out.End != devicemodel.EndCrashed || st.State != devicemodel.GuestCrashed ||
		!strings.HasPrefix(st.Reason, "qemu exited with status 1: ") {
		t.Errorf("Run = %s, %v; run state %+v; want crashed, qemu's exit first in the reason", res.out.End, res.err, st)
	}
}
