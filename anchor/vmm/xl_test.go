package vmm

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/xl"
)

// fakeXLScript plays xl over one domain whose state flags are in the file
// dom beside it (no file: no domain); it appends each command to calls.
const fakeXLScript = `#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/calls"
set_state() { echo "$1" > "$d/dom.new" && mv "$d/dom.new" "$d/dom"; }
case "$1" in
list)
	[ -f "$d/dom" ] || { echo "$2 is an invalid domain identifier (rc=-6)" >&2; exit 1; }
	printf 'Name ID Mem VCPUs State Time(s)\n%s 3 128 1 %s 0.1\n' "$2" "$(cat "$d/dom")";;
create) set_state --p---;;
unpause) set_state r-----;;
pause) set_state --p---;;
shutdown|destroy) rm -f "$d/dom";;
*) echo "fake xl: unknown command $1" >&2; exit 2;;
esac
`

// xlRig is a Run of the anchor over the fake xl, the xl backend and its
// runner being the real ones.
type xlRig struct {
	*rig
	bin string // the fake xl
}

func newXLRig(t *testing.T) *xlRig {
	t.Helper()
	r := newRig(t, &devicemodel.VM{Name: "dom", Hypervisor: devicemodel.Xen})
	bin := filepath.Join(t.TempDir(), "xl")
	if err := os.WriteFile(bin, []byte(fakeXLScript), 0o755); err != nil {
		t.Fatal(err)
	}
	r.opts.newBackend = nil
	r.opts.DeviceModel, r.opts.Poll = bin, 5*time.Millisecond
	return &xlRig{rig: r, bin: bin}
}

// domain sets the fake domain's state flags, as Xen would.
func (x *xlRig) domain(flags string) {
	x.t.Helper()
	dom := filepath.Join(filepath.Dir(x.bin), "dom")
	if err := os.WriteFile(dom+".new", []byte(flags+"\n"), 0o644); err != nil {
		x.t.Fatal(err)
	}
	if err := os.Rename(dom+".new", dom); err != nil {
		x.t.Fatal(err)
	}
}

func (x *xlRig) calls() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(x.bin), "calls"))
	return string(b)
}

func (x *xlRig) state(want devicemodel.GuestState) {
	x.t.Helper()
	x.waitState(func(st devicemodel.RunState) bool { return st.State == want }, string(want))
}

// The anchor destroys the domain an earlier run left, creates its own
// paused and lets it run; SIGUSR1 and SIGUSR2 pause and unpause it, and
// SIGTERM shuts it down: the domain vanishing then is a poweroff.
func TestRunXL(t *testing.T) {
	x := newXLRig(t)
	x.domain("-b----")
	x.run()
	x.state(devicemodel.GuestRunning)
	cfg := filepath.Join(x.dir, "xl.cfg")
	if want := "list dom\ndestroy dom\ncreate -p " + cfg + "\nunpause dom\n"; !strings.HasPrefix(x.calls(), want) {
		t.Errorf("xl was run as\n%s\nwant first\n%s", x.calls(), want)
	}
	if b, err := os.ReadFile(cfg); err != nil || !strings.Contains(string(b), `name = 'dom'`) {
		t.Errorf("xl.cfg %q, %v", b, err)
	}
	x.signal(unix.SIGUSR1)
	x.state(devicemodel.GuestPaused)
	x.signal(unix.SIGUSR2)
	x.state(devicemodel.GuestRunning)
	x.signal(unix.SIGTERM)
	x.ended(devicemodel.EndPoweroff, devicemodel.GuestShutdown, "domain is gone")
	if !strings.Contains(x.calls(), "shutdown -F dom\n") {
		t.Errorf("xl was run as\n%s\nwithout a shutdown", x.calls())
	}
}

// A domain that crashes is destroyed and ends the run as a crash.
func TestRunXLCrash(t *testing.T) {
	x := newXLRig(t)
	x.run()
	x.state(devicemodel.GuestRunning)
	x.domain("----c-")
	x.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "domain crashed")
	if !strings.Contains(x.calls(), "\ndestroy dom\n") {
		t.Errorf("xl was run as\n%s\nwithout a destroy", x.calls())
	}
}

// An xl that cannot be found fails the start at once.
func TestRunXLMissing(t *testing.T) {
	x := newXLRig(t)
	x.opts.DeviceModel = filepath.Join(t.TempDir(), "xl")
	x.run()
	res := await(t, x.done, "end of Run")
	if res.out.End != devicemodel.EndCrashed || !errors.Is(res.err, fs.ErrNotExist) {
		t.Errorf("Run = %s, %v; want crashed, xl not found", res.out.End, res.err)
	}
	st := x.waitState(func(devicemodel.RunState) bool { return true }, "a run state")
	if st.State != devicemodel.GuestCrashed || !strings.HasSuffix(res.err.Error(), st.Reason) {
		t.Errorf("run state %+v, want crashed for the start's error", st)
	}
}

// The runner returns xl's output, its failure as an *xl.ExitError with
// its standard error, and kills an xl that outlives its context.
func TestReapedRunner(t *testing.T) {
	r := &reapedRunner{bin: "sh", reaper: rp, log: discard()}
	ctx := context.Background()
	out, err := r.Run(ctx, "-c", "echo out; echo err >&2")
	if err != nil || string(out) != "out\n" {
		t.Errorf("Run = %q, %v", out, err)
	}
	out, err = r.Run(ctx, "-c", "echo out; echo failed >&2; exit 3")
	var xe *xl.ExitError
	if !errors.As(err, &xe) || xe.Code != 3 || xe.Stderr != "failed" || string(out) != "out\n" {
		t.Errorf("Run = %q, %v; want exit 3 with its stderr", out, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := r.Run(ctx, "-c", "exec sleep 60"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an xl that outlived its context: %v", err)
	}
}
