package lifecycle

import (
	"testing"
	"time"

	"github.com/lf-edge/moor/devicemodel"
)

// A container app VM's exit is its app's, as the guest reported it,
// whether a reaper saw the anchor end (seen) or not; without a report the
// rule of other tasks holds.
func TestAppExit(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	killed := &devicemodel.RunState{AppExit: &devicemodel.AppExit{Code: 143, Signal: "SIGTERM"}, Updated: at}
	exited := &devicemodel.RunState{AppExit: &devicemodel.AppExit{Code: 42}, Updated: at}
	seen := &Exit{Code: 143, Reason: ExitCode, At: at.Add(time.Second)}
	for _, c := range []struct {
		name string
		got  *Exit
		want Exit
	}{
		{"unseen, app exited", unseenExit("", exited), Exit{Code: 42, Reason: ExitCode, At: at}},
		{"unseen, app killed", unseenExit("", killed), Exit{Code: 143, Signal: "SIGTERM", Reason: ExitSignal, At: at}},
		{"seen, app killed", appExit(killed, seen), Exit{Code: 143, Signal: "SIGTERM", Reason: ExitSignal, At: seen.At}},
		{"unseen, no report", unseenExit("", &devicemodel.RunState{End: devicemodel.EndCrashed}), Exit{Code: CodeUnknown, Reason: ExitUnknown}},
		{"unseen, not a VM", unseenExit("", nil), Exit{Code: CodeUnknown, Reason: ExitUnknown}},
	} {
		if c.got == nil || *c.got != c.want {
			t.Errorf("%s: exit %+v, want %+v", c.name, c.got, c.want)
		}
	}
	if ex := appExit(&devicemodel.RunState{}, seen); ex != nil {
		t.Errorf("a VM whose app reported nothing: %+v, want none", ex)
	}
}
