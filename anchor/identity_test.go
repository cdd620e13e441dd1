package anchor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/lf-edge/moor/procfs"
)

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
	id, err := Capture(procfs.Root, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	h, err := id.Open(procfs.Root)
	if err != nil {
		t.Skipf("pidfd not supported here: %v", err)
	}
	defer h.Close()
	if exited, err := h.Exited(); err != nil || exited {
		t.Fatalf("Exited on a live process: %v %v", exited, err)
	}
	forged := Identity{PID: id.PID, StartTime: id.StartTime + 1}
	if _, err := forged.Open(procfs.Root); !errors.Is(err, ErrGone) {
		t.Fatalf("Open with a foreign start time: %v, want ErrGone", err)
	}
}
