package xl

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/lf-edge/moor/devicemodel"
)

// scripted answers xl calls from a table and records them.
type scripted struct {
	calls []string
	out   map[string]string
	fail  map[string]error
}

func (s *scripted) Run(_ context.Context, args ...string) ([]byte, error) {
	call := strings.Join(args, " ")
	s.calls = append(s.calls, call)
	if err, ok := s.fail[call]; ok {
		return nil, err
	}
	return []byte(s.out[call]), nil
}

const listing = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n" +
	"demo                                         3   128     1     --p---       0.1\n"

func TestDriver(t *testing.T) {
	ctx := context.Background()
	r := &scripted{out: map[string]string{"list demo": listing}}
	d := &Driver{Run: r, Name: "demo"}
	for _, step := range []func(context.Context) error{
		func(ctx context.Context) error { return d.Create(ctx, "/run/moor/vm/xl.cfg") },
		d.Unpause, d.Pause, d.Shutdown, d.Destroy,
	} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dom, err := d.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dom.ID != 3 || dom.State != "--p---" || dom.GuestState() != devicemodel.GuestPaused {
		t.Errorf("State = %+v (%s)", dom, dom.GuestState())
	}
	want := "create -p /run/moor/vm/xl.cfg|unpause demo|pause demo|shutdown -F demo|destroy demo|list demo"
	if got := strings.Join(r.calls, "|"); got != want {
		t.Errorf("calls %s, want %s", got, want)
	}
}

func TestDriverGone(t *testing.T) {
	gone := &ExitError{Args: []string{"list", "demo"}, Code: 1, Stderr: "demo is an invalid domain identifier (rc=-6)"}
	r := &scripted{fail: map[string]error{"list demo": gone, "destroy demo": gone}}
	d := &Driver{Run: r, Name: "demo"}
	if _, err := d.State(context.Background()); !errors.Is(err, ErrNoDomain) {
		t.Errorf("State of a gone domain = %v, want ErrNoDomain", err)
	}
	if err := d.Destroy(context.Background()); err != nil {
		t.Errorf("Destroy of a gone domain = %v, want nil", err)
	}
}

// TestDriverFails: only xl's own verdict, an ExitError that says so, makes
// a domain gone; other failures are errors.
func TestDriverFails(t *testing.T) {
	for name, err := range map[string]error{
		"killed":        &ExitError{Args: []string{"list", "demo"}, Signal: syscall.SIGKILL, Stderr: "demo is an invalid domain identifier"},
		"other failure": &ExitError{Args: []string{"list", "demo"}, Code: 2, Stderr: "libxl: cannot connect"},
		"not xl's exit": errors.New("xl list demo: demo is an invalid domain identifier"),
	} {
		t.Run(name, func(t *testing.T) {
			r := &scripted{fail: map[string]error{"list demo": err, "destroy demo": err}}
			d := &Driver{Run: r, Name: "demo"}
			if _, got := d.State(context.Background()); got == nil || errors.Is(got, ErrNoDomain) {
				t.Errorf("State = %v, want an error that is not ErrNoDomain", got)
			}
			if got := d.Destroy(context.Background()); !errors.Is(got, err) {
				t.Errorf("Destroy = %v, want it to wrap %v", got, err)
			}
		})
	}
}

func TestGuestState(t *testing.T) {
	for flags, want := range map[string]devicemodel.GuestState{
		"r-----": devicemodel.GuestRunning, "-b----": devicemodel.GuestRunning, "------": devicemodel.GuestRunning,
		"--p---": devicemodel.GuestPaused, "---s--": devicemodel.GuestShutdown, "----c-": devicemodel.GuestCrashed,
		"-----d": devicemodel.GuestShutdown,
	} {
		if got := (Domain{State: flags}).GuestState(); got != want {
			t.Errorf("GuestState(%s) = %s, want %s", flags, got, want)
		}
	}
}
