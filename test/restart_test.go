package test

import (
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/lifecycle"
)

// TestRestartVerb: moor restart starts a stopped task again (a new
// anchor, restarts 1), and a running one, named by its anchor's PID,
// after stopping it (restarts 2); moor start of a stopped task still
// fails, as the OCI runtime spec wants.
func TestRestartVerb(t *testing.T) {
	b := newBundle(t, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
	first := runDetached(t, b)
	if err := unix.Kill(first, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, b.ID, lifecycle.Stopped)
	if r := moor(t, "start", b.ID); r.Code == 0 {
		t.Fatalf("moor start of a stopped task exited 0: %v", r)
	}
	mustMoor(t, "restart", b.ID)
	st := taskState(t, b.ID)
	if st.Status != lifecycle.Running || st.PID == first || st.Restarts != 1 {
		t.Fatalf("after restart of the stopped task: %+v, want running, a new anchor, 1 restart", st)
	}
	mustMoor(t, "restart", "--timeout", "5s", strconv.Itoa(st.PID))
	again := taskState(t, b.ID)
	if again.Status != lifecycle.Running || again.PID == st.PID || again.Restarts != 2 || alive(st.PID) {
		t.Fatalf("after restart of the running task: %+v, want running, a new anchor (the old %d gone), 2 restarts", again, st.PID)
	}
}
