package vmm

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/reaper"
)

// The run state names the signal that killed the device model as the
// kernel names it.
func TestDescribe(t *testing.T) {
	for status, want := range map[unix.WaitStatus]string{
		unix.WaitStatus(unix.SIGKILL): "qemu killed by SIGKILL",
		unix.WaitStatus(unix.SIGSEGV): "qemu killed by SIGSEGV",
		unix.WaitStatus(3 << 8):       "qemu exited with status 3",
	} {
		if got := describe("qemu", reaper.Reaped{PID: 7, Status: status}); got != want {
			t.Errorf("describe(%#x) = %q, want %q", int(status), got, want)
		}
	}
}

// deafQemu is a device model whose monitor is gone: every command fails;
// kill ends it, as SIGKILL would.
type deafQemu struct {
	events chan<- event
	killed bool
}

var errDeaf = errors.New("dial qmp: no such file or directory")

func (d *deafQemu) start(context.Context) error     { return nil }
func (d *deafQemu) pid() int                        { return 14 }
func (d *deafQemu) powerdown(context.Context) error { return errDeaf }
func (d *deafQemu) stop(context.Context) error      { return errDeaf }
func (d *deafQemu) pause(context.Context) error     { return errDeaf }
func (d *deafQemu) resume(context.Context) error    { return errDeaf }
func (d *deafQemu) kill() {
	if !d.killed {
		d.killed = true
		d.events <- event{gone: true, state: devicemodel.GuestShutdown, reason: describe("qemu", reaper.Reaped{Status: unix.WaitStatus(unix.SIGKILL)})}
	}
}

// A guest that cannot be asked to power down (its QMP socket is gone) is
// stopped at once, not after the grace: the device model is killed, and
// the run state says the guest was forced down and why.
func TestPowerdownFailedStopsAtOnce(t *testing.T) {
	dir := t.TempDir()
	events := make(chan event, 4)
	b := &deafQemu{events: events}
	vm := &devicemodel.VM{Name: "deaf", Hypervisor: devicemodel.TCG}
	o := Options{VM: vm, Dir: dir, Grace: time.Hour}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	l := &loop{o: o, b: b, state: devicemodel.RunState{State: devicemodel.GuestRunning, Hypervisor: vm.Hypervisor}}
	sigs := make(chan os.Signal, 1)
	sigs <- unix.SIGTERM
	done := make(chan devicemodel.End, 1)
	go func() { done <- l.run(context.Background(), sigs, events) }()
	var end devicemodel.End
	select {
	case end = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the anchor waited for the grace of a guest it could not ask to power down")
	}
	if end != devicemodel.EndForced || !b.killed {
		t.Errorf("end %s, device model killed %v; want forced and killed", end, b.killed)
	}
	st, err := devicemodel.ReadRunState(map[string]string{devicemodel.AnnotationRunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != devicemodel.GuestShutdown || st.End != devicemodel.EndForced || st.Reason != "powerdown failed: "+errDeaf.Error() {
		t.Errorf("run state %+v, want shutdown, end forced, the powerdown's failure as reason", st)
	}
}
