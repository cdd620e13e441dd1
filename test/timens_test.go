package test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// withTimeNS gives the bundle's task a time namespace with the offsets.
func withTimeNS(b *bundle, offsets map[string]specs.LinuxTimeOffset) {
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	b.Spec.Linux.TimeOffsets = offsets
}

// uptime is the first field of a /proc/uptime text: CLOCK_BOOTTIME, as
// the reader's time namespace sees it, in hundredths of a second, the
// kernel's own unit there. Whole numbers, so that two readings in the
// same hundredth compare equal, as floats would not once 1000 s is added.
func uptime(t *testing.T, text string) int64 {
	t.Helper()
	f := strings.Fields(text)
	if len(f) == 0 {
		t.Fatalf("uptime %q: empty", text)
	}
	secs, hundredths, ok := strings.Cut(f[0], ".")
	s, err1 := strconv.ParseInt(secs, 10, 64)
	h, err2 := strconv.ParseInt(hundredths, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(hundredths) != 2 {
		t.Fatalf("uptime %q: want seconds with two decimals", text)
	}
	return s*100 + h
}

func hostUptime(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	return uptime(t, string(b))
}

// TestTimensBoottimeOffset: with a boottime offset of 1000 s the task's
// uptime is at least 1000 s above the host's, and not more than the
// host's, read after it, plus 1000 s.
func TestTimensBoottimeOffset(t *testing.T) {
	b := newBundle(t, "cat", "/proc/uptime")
	withTimeNS(b, map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000}})
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	before := hostUptime(t)
	r := moor(t, "run", "--bundle", b.Dir, b.ID)
	after := hostUptime(t)
	if r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	inside := uptime(t, r.Stdout)
	const offset = 1000 * 100
	if inside < before+offset || inside > after+offset {
		t.Fatalf("uptime inside %d cs, want %d to %d (the host's + 1000 s)", inside, before+offset, after+offset)
	}
}

// TestTimensOffsetsVisible: both clocks' offsets are those of the task's
// time namespace, as /proc/<pid>/timens_offsets shows them from the host,
// and the host's own clocks are untouched.
func TestTimensOffsetsVisible(t *testing.T) {
	b := newBundle(t, "sleep", "100000")
	withTimeNS(b, map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 500, Nanosecs: 250}, "boottime": {Secs: 1000}})
	pid := runDetached(t, b)
	got, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/timens_offsets")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"monotonic": "500 250", "boottime": "1000 0"}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if len(lines) != len(want) {
		t.Errorf("timens_offsets %q, want a line per clock: %v", got, want)
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 || want[f[0]] != f[1]+" "+f[2] {
			t.Errorf("timens_offsets line %q, want %v", line, want)
		}
	}
	own, err := os.ReadFile("/proc/self/timens_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(strings.Fields(string(own)), " ") != "monotonic 0 0 boottime 0 0" {
		t.Errorf("the host's offsets changed: %q", own)
	}
	mustMoor(t, "delete", "--force", b.ID)
}
