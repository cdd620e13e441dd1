package supervisor

import (
	"testing"
	"time"

	"github.com/lf-edge/moor/lifecycle"
)

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{
		"": {Mode: RestartNo}, "no": {Mode: RestartNo}, "always": {Mode: RestartAlways},
		"on-failure": {Mode: RestartOnFailure}, "on-failure:3": {Mode: RestartOnFailure, Max: 3},
	} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"sometimes", "on-failure:0", "on-failure:x", "always:2", "no:1"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
}

func TestDecide(t *testing.T) {
	ok, fail := &lifecycle.Exit{Code: 0}, &lifecycle.Exit{Code: 1}
	reboot, poweroff := &lifecycle.Exit{Code: 129, Signal: "SIGHUP"}, &lifecycle.Exit{Code: 130, Signal: "SIGINT"}
	cases := []struct {
		p        Policy
		ex       *lifecycle.Exit
		restarts int
		want     Verdict
	}{
		{Policy{Mode: RestartNo}, fail, 0, Keep},
		{Policy{Mode: RestartNo}, reboot, 0, Restart},
		{Policy{Mode: RestartAlways}, ok, 5, Restart},
		{Policy{Mode: RestartAlways}, poweroff, 0, Poweroff},
		{Policy{Mode: RestartOnFailure}, ok, 0, Keep},
		{Policy{Mode: RestartOnFailure}, fail, 100, Restart},
		{Policy{Mode: RestartOnFailure, Max: 2}, fail, 1, Restart},
		{Policy{Mode: RestartOnFailure, Max: 2}, fail, 2, Keep},
	}
	for _, c := range cases {
		if got := c.p.Decide(c.ex, c.restarts); got != c.want {
			t.Errorf("%+v.Decide(%+v, %d) = %v, want %v", c.p, c.ex, c.restarts, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	if Backoff(0) != BackoffBase || Backoff(1) != 2*BackoffBase || Backoff(3) != 8*BackoffBase {
		t.Fatalf("backoff not doubling: %v %v %v", Backoff(0), Backoff(1), Backoff(3))
	}
	if Backoff(100) != BackoffCap {
		t.Fatalf("backoff not capped: %v", Backoff(100))
	}
}

func TestParseStopTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultStopTimeout, "3": 3 * time.Second, "250ms": 250 * time.Millisecond} {
		if got, err := ParseStopTimeout(in); err != nil || got != want {
			t.Errorf("ParseStopTimeout(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseStopTimeout("soon"); err == nil {
		t.Error("ParseStopTimeout(soon) accepted")
	}
}
