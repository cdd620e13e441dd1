package supervisor

import (
	"os"
	"strings"
	"testing"
)

func TestTaskLogsRotate(t *testing.T) {
	l := TaskLogs{Dir: t.TempDir(), MaxBytes: 10, Keep: 2}
	f, err := l.Open("svc")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, chunk := range []string{"aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dd"} {
		if _, err := f.WriteString(chunk); err != nil {
			t.Fatal(err)
		}
		if err := l.Rotate("svc"); err != nil {
			t.Fatalf("rotate %d: %v", i, err)
		}
	}
	read := func(suffix string) string {
		b, _ := os.ReadFile(l.Path("svc") + suffix)
		return string(b)
	}
	// The writer appends: after a truncate its next write lands at the start.
	if got := read(""); got != "dd" {
		t.Fatalf("current log %q", got)
	}
	if read(".1") != strings.Repeat("c", 12) || read(".2") != strings.Repeat("b", 12) {
		t.Fatalf("rotated logs: .1=%q .2=%q", read(".1"), read(".2"))
	}
	if _, err := os.Stat(l.Path("svc") + ".3"); !os.IsNotExist(err) {
		t.Fatal("kept more than Keep old logs")
	}
}
