package anchor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const statLine = "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	st, err := ParseStat(strings.NewReader(statLine))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{PID: 4242, Comm: "we ird) (name)", State: 'S', PPID: 1, StartTime: 987654}
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "12 no-parens S 1", "12 (x) S 1 2 3"} {
		if _, err := ParseStat(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseStat(%q) succeeded", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus(strings.NewReader("Name:\tsleep\nVmRSS:\t   1234 kB\nThreads:\t3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if st != (Status{RSSKiB: 1234, Threads: 3}) {
		t.Fatalf("got %+v", st)
	}
}

// fakeProc writes /proc/<pid>/stat under a temporary proc root.
func fakeProc(t *testing.T, pid int, state byte, start uint64) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	line := strconv.Itoa(pid) + " (sleep) " + string(state) + " 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " +
		strconv.FormatUint(start, 10) + " 0 0\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestIdentityCheck(t *testing.T) {
	id := Identity{PID: 77, StartTime: 5000}
	cases := []struct {
		name  string
		state byte
		start uint64
		gone  bool
	}{
		{"same process", 'S', 5000, false},
		{"reused pid", 'S', 5001, true},
		{"zombie", 'Z', 5000, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := id.Check(fakeProc(t, 77, c.state, c.start))
			if got := errors.Is(err, ErrGone); got != c.gone {
				t.Fatalf("Check: %v, gone=%v want %v", err, got, c.gone)
			}
		})
	}
	if err := id.Check(t.TempDir()); !errors.Is(err, ErrGone) {
		t.Fatalf("Check of a missing process: %v", err)
	}
}

func TestHandleOnSelf(t *testing.T) {
	id, err := Capture(ProcRoot, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	h, err := id.Open(ProcRoot)
	if err != nil {
		t.Skipf("pidfd not supported here: %v", err)
	}
	defer h.Close()
	if exited, err := h.Exited(); err != nil || exited {
		t.Fatalf("Exited on a live process: %v %v", exited, err)
	}
	forged := Identity{PID: id.PID, StartTime: id.StartTime + 1}
	if _, err := forged.Open(ProcRoot); !errors.Is(err, ErrGone) {
		t.Fatalf("Open with a foreign start time: %v, want ErrGone", err)
	}
}
