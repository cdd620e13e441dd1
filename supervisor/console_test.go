package supervisor_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lf-edge/moor/supervisor"
)

// syncBuf is a buffer written by the console's copies and read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConsoleOutput: each line whole, prefixed with the task's name; a
// last line without a newline gets one; a line longer than the buffer is
// cut into lines; Flush returns once the writer closed, and after its
// bound while a writer holds the pipe.
func TestConsoleOutput(t *testing.T) {
	var buf syncBuf
	out := supervisor.NewConsoleOutput(supervisor.NewConsole(&buf))
	out.FlushTimeout = deadline // the copy of a closed writer ends: Flush waits for it
	w, err := out.Open("web")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 5000)
	if _, err := w.WriteString("one\ntwo\n" + long + "\nlast"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	out.Flush("web")
	want := "[web] one\n[web] two\n[web] " + long[:4096] + "\n[web] " + long[4096:] + "\n[web] last\n"
	if got := buf.String(); got != want {
		t.Errorf("console:\n%q\nwant:\n%q", got, want)
	}

	out.FlushTimeout = 50 * time.Millisecond
	held, err := out.Open("held")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	done := make(chan struct{})
	go func() { out.FlushAll(); close(done) }()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatal("FlushAll did not return while a writer held its pipe")
	}
}

// TestManagerConsole: with Output set, a Manager's tasks write to the
// console, prefixed, and the onboot task's output is all there before the
// services start.
func TestManagerConsole(t *testing.T) {
	r := newRig(t)
	var buf syncBuf
	r.opts.Output = supervisor.NewConsoleOutput(supervisor.NewConsole(&buf))
	r.add(t, "onboot", "000-first", "echo first one; echo first two", nil)
	r.add(t, "services", "010-svc", "echo svc up; exec sleep 100", nil)
	r.run(t)
	r.ready(t)
	until(t, "the service's line on the console", func() bool { return strings.Contains(buf.String(), "[svc] svc up\n") })
	r.stop(t)
	got := buf.String()
	if !strings.HasPrefix(got, "[first] first one\n[first] first two\n") {
		t.Errorf("console:\n%s\nwant the onboot task's lines first", got)
	}
}
