package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// kept is a task's kept output, oldest first, after checking that no file
// is longer than MaxBytes and that at most Keep older ones are there.
func kept(t *testing.T, l TaskLogs, id string) string {
	t.Helper()
	var all []byte
	for i := l.keep() + 1; i >= 0; i-- {
		path := l.Path(id)
		if i > 0 {
			path = l.old(id, i)
		}
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		if i > l.keep() {
			t.Fatalf("%s kept: more than %d older logs", path, l.keep())
		}
		if int64(len(b)) > l.MaxBytes {
			t.Fatalf("%s is %d bytes, more than %d", path, len(b), l.MaxBytes)
		}
		all = append(all, b...)
	}
	return string(all)
}

func openLog(t *testing.T, o *LogFiles, id string) *os.File {
	t.Helper()
	f, err := o.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestLogFilesBound: however a task writes, no log file is longer than
// MaxBytes, Keep older ones are kept, lines are whole where they fit, and
// what is kept is the newest of the output, all of it.
func TestLogFilesBound(t *testing.T) {
	l := TaskLogs{Dir: t.TempDir(), MaxBytes: 100, Keep: 2}
	o := NewLogFiles(l)
	f := openLog(t, o, "svc")
	var out strings.Builder
	for i := range 50 {
		line := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", i%30))
		out.WriteString(line)
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("y", 250) + "\n" // longer than MaxBytes: cut
	out.WriteString(long)
	if _, err := f.WriteString(long + "tail\n"); err != nil {
		t.Fatal(err)
	}
	out.WriteString("tail\n")
	f.Close()
	o.Flush("svc")
	got := kept(t, l, "svc")
	if !strings.HasSuffix(out.String(), got) || !strings.HasSuffix(got, "y\ntail\n") {
		t.Fatalf("kept %q, not the end of what was written", got)
	}
	if b, _ := os.ReadFile(l.old("svc", 2)); len(b) != 100 || b[0] != 'y' {
		t.Fatalf("the cut line's first part: %q", b)
	}
	// The writer is gone: Rotate attaches a new one to the pipe, which
	// ends at once (no task holds it); wait for it before the directory goes.
	if err := o.Rotate("svc"); err != nil {
		t.Fatal(err)
	}
	o.Flush("svc")
}

// TestLogFilesLinesWhole: a write that would cross the bound ends at its
// last line end that fits; the rest starts the next file.
func TestLogFilesLinesWhole(t *testing.T) {
	l := TaskLogs{Dir: t.TempDir(), MaxBytes: 10, Keep: 1}
	o := NewLogFiles(l)
	f := openLog(t, o, "svc")
	if _, err := f.WriteString("aaaa\nbbbb\ncc\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	o.Flush("svc")
	// aaaa\nbbbb\n is 10 bytes: a full file, rotated at once.
	for path, want := range map[string]string{l.old("svc", 1): "aaaa\nbbbb\n", l.Path("svc"): "cc\n"} {
		if b, _ := os.ReadFile(path); string(b) != want {
			t.Fatalf("%s: %q, want %q", filepath.Base(path), b, want)
		}
	}
}

// TestLogFilesAfterSupervisor: a task whose supervisor died writes on into
// its pipe, never meeting EPIPE; the next supervisor's Rotate finds the
// pipe and writes what waited there, and what comes next.
func TestLogFilesAfterSupervisor(t *testing.T) {
	l := TaskLogs{Dir: t.TempDir(), MaxBytes: 1 << 20, Keep: 1}
	// What the dead supervisor's Open left: the pipe and the task's end.
	if err := unix.Mkfifo(l.pipePath("svc"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(l.pipePath("svc"), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	task := os.NewFile(uintptr(fd), "task")
	defer task.Close()
	if _, err := task.WriteString("while no one read\n"); err != nil {
		t.Fatalf("a write with no supervisor: %v", err)
	}
	o := NewLogFiles(l)
	if err := o.Rotate("svc"); err != nil {
		t.Fatal(err)
	}
	if _, err := task.WriteString("after\n"); err != nil {
		t.Fatal(err)
	}
	task.Close()
	o.Flush("svc")
	if b, _ := os.ReadFile(l.Path("svc")); string(b) != "while no one read\nafter\n" {
		t.Fatalf("log %q", b)
	}
}

// TestLogFilesRestart: a task opened again while the writer of its
// earlier run still reads keeps one writer, and the output's order.
func TestLogFilesRestart(t *testing.T) {
	l := TaskLogs{Dir: t.TempDir(), MaxBytes: 1 << 20, Keep: 1}
	o := NewLogFiles(l)
	first := openLog(t, o, "svc")
	second := openLog(t, o, "svc")
	first.WriteString("first\n")
	first.Close()
	second.WriteString("second\n")
	second.Close()
	o.Flush("svc")
	if b, _ := os.ReadFile(l.Path("svc")); string(b) != "first\nsecond\n" {
		t.Fatalf("log %q", b)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.writers) != 0 {
		t.Fatalf("writers left: %v", o.writers)
	}
}

// TestTruncateOversize: the log of a task that writes its file itself is
// truncated past MaxBytes, even when it cannot be copied.
func TestTruncateOversize(t *testing.T) {
	l := TaskLogs{Dir: t.TempDir(), MaxBytes: 10, Keep: 1}
	write := func(s string) {
		if err := os.WriteFile(l.Path("svc"), []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("aaaaaaaaaaaa")
	if err := l.truncateOversize("svc"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(l.Path("svc")); err != nil || fi.Size() != 0 {
		t.Fatalf("not truncated: %v, %v", fi, err)
	}
	if b, _ := os.ReadFile(l.old("svc", 1)); string(b) != "aaaaaaaaaaaa" {
		t.Fatalf("copy %q", b)
	}
	// A copy that fails (here: <id>.log.1 cannot be replaced).
	if err := os.Remove(l.old("svc", 1)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(l.old("svc", 1), "busy"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("bbbbbbbbbbbb")
	if err := l.truncateOversize("svc"); err == nil {
		t.Fatal("no error for a failed copy")
	}
	if fi, err := os.Stat(l.Path("svc")); err != nil || fi.Size() != 0 {
		t.Fatalf("not truncated: %v, %v", fi, err)
	}
}

// TestLogFilesFlushBound: Flush returns after FlushTimeout when the task
// still holds its output.
func TestLogFilesFlushBound(t *testing.T) {
	o := NewLogFiles(TaskLogs{Dir: t.TempDir(), MaxBytes: 100, Keep: 1})
	o.FlushTimeout = 10 * time.Millisecond
	_ = openLog(t, o, "svc")
	done := make(chan struct{})
	go func() { o.Flush("svc"); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Flush did not return")
	}
}
