package devicemodel

import (
	"errors"
	"strings"
	"testing"
)

func TestMessages(t *testing.T) {
	for line, want := range map[string]Message{
		"started 42":                            {Kind: MsgStarted, PID: 42},
		"exit code 7":                           {Kind: MsgExit, Code: 7},
		"exit signal 15":                        {Kind: MsgExit, Signal: 15},
		"error mount moor-root: no such device": {Kind: MsgError, Text: "mount moor-root: no such device"},
		"signal 1":                              {Kind: MsgSignal, Signal: 1},
		"ack":                                   {Kind: MsgAck},
	} {
		got, err := ParseMessage(line + "\n")
		if err != nil || got != want {
			t.Errorf("ParseMessage(%q) = %+v, %v, want %+v", line, got, err, want)
		}
		if got.String() != line {
			t.Errorf("%+v writes %q, want %q", got, got.String(), line)
		}
	}
	for _, bad := range []string{"", "hello", "exit", "exit code", "exit code 256", "exit code -1", "exit signal 0",
		"signal 0", "signal 65", "signal x", "started", "ack now", "exit nicely 3"} {
		if _, err := ParseMessage(bad); !errors.Is(err, ErrBadMessage) {
			t.Errorf("ParseMessage(%q) = %v, want ErrBadMessage", bad, err)
		}
	}
}

func TestOutcomeExitCode(t *testing.T) {
	for _, c := range []struct {
		o    Outcome
		want int
	}{
		{Outcome{End: EndPoweroff}, ExitPoweroff},
		{Outcome{End: EndForced}, ExitForced},
		{Outcome{End: EndCrashed}, ExitCrashed},
		{Outcome{End: EndPoweroff, App: true, AppExit: ExitOf(Message{Kind: MsgExit, Code: 7})}, 7},
		{Outcome{End: EndForced, App: true, AppExit: ExitOf(Message{Kind: MsgExit, Signal: 15})}, 143},
		{Outcome{End: EndForced, App: true}, ExitAppForced},
		{Outcome{End: EndPoweroff, App: true}, ExitAppLost},
		{Outcome{End: EndCrashed, App: true}, ExitAppLost},
	} {
		if got := c.o.ExitCode(); got != c.want {
			t.Errorf("%+v exits %d, want %d", c.o, got, c.want)
		}
	}
	if e := ExitOf(Message{Kind: MsgExit, Signal: 15}); e.Signal != "SIGTERM" || e.Code != 143 {
		t.Errorf("exit by signal 15 = %+v", e)
	}
}

func TestAppAndSharesRejects(t *testing.T) {
	for desc, field := range map[string]string{
		`{"name":"a","memoryMiB":128,"app":true}`:                                                          "kernel",
		`{"name":"a","memoryMiB":128,"hypervisor":"xen","app":true,"kernel":"/k"}`:                         "app",
		`{"name":"a","memoryMiB":128,"hypervisor":"xen","shares":[{"tag":"t","path":"/p"}]}`:               "shares",
		`{"name":"a","memoryMiB":128,"shares":[{"tag":"","path":"/p"}]}`:                                   "shares[0].tag",
		`{"name":"a","memoryMiB":128,"shares":[{"tag":"a-tag-that-is-longer-than-31-chars","path":"/p"}]}`: "shares[0].tag",
		`{"name":"a","memoryMiB":128,"shares":[{"tag":"t","path":"/p"},{"tag":"t","path":"/q"}]}`:          "shares[1].tag",
		`{"name":"a","memoryMiB":128,"shares":[{"tag":"t","path":"rel"}]}`:                                 "shares[0].path",
		`{"name":"a","memoryMiB":128,"arch":"riscv64"}`:                                                    "arch",
	} {
		_, err := Parse(strings.NewReader(desc), fixedProbe(false))
		if !errors.Is(err, ErrInvalidVM) || !strings.Contains(err.Error(), field) {
			t.Errorf("Parse(%s) = %v, want an ErrInvalidVM naming %s", desc, err, field)
		}
	}
	foreign := ARM64
	if HostArch() == ARM64 {
		foreign = AMD64
	}
	_, err := Parse(strings.NewReader(`{"name":"a","memoryMiB":128,"hypervisor":"kvm","arch":"`+string(foreign)+`"}`), nil)
	if !errors.Is(err, ErrInvalidVM) || !strings.Contains(err.Error(), "arch") {
		t.Errorf("kvm with a foreign arch: %v, want an error naming arch", err)
	}
	vm, err := Parse(strings.NewReader(`{"name":"a","memoryMiB":128,"hypervisor":"tcg","arch":"`+string(foreign)+`"}`), nil)
	if err != nil || vm.Arch != foreign {
		t.Errorf("tcg with a foreign arch: %+v, %v", vm, err)
	}
}
