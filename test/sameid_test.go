package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lf-edge/moor/lifecycle"
)

// TestSameIDCreates: 20 creates of one ID at once, exactly one wins and
// the others fail with "exists"; the winner runs with its root intact (a
// writable root keeps its overlay, and a write lands in its upper
// directory), and delete leaves nothing. 10 rounds with a read-only root
// and 10 with a writable one.
func TestSameIDCreates(t *testing.T) {
	const racers = 20
	for _, writable := range []bool{false, true} {
		name := map[bool]string{false: "read-only-root", true: "writable-root"}[writable]
		t.Run(name, func(t *testing.T) {
			var times []time.Duration
			failed := 0
			for round := range 10 {
				start := time.Now()
				if !t.Run(fmt.Sprintf("round-%d", round), func(t *testing.T) { raceCreates(t, round, racers, writable) }) {
					failed++
				}
				times = append(times, time.Since(start))
			}
			t.Logf("figure: %d rounds of %d same-ID creates (%s), %d failed: %s per round", len(times), racers, name, failed, durationFigures(times))
		})
	}
}

// raceCreates runs one round: n creates of one ID at once, then the
// winner's checks and its delete.
func raceCreates(t *testing.T, round, n int, writable bool) {
	t.Helper()
	newB := newBundle
	if writable {
		newB = writableBundle
	}
	b := newB(t, "sleep", "1000")
	b.write(t)
	t.Cleanup(func() { scrub(t, b.ID, b.Spec.Linux.CgroupsPath) })
	cmds := make([]*exec.Cmd, n)
	outs := make([][2]*os.File, n)
	for i := range cmds {
		cmds[i] = moorCmd("create", "--bundle", b.Dir, b.ID)
		outs[i] = [2]*os.File{tempFile(t), tempFile(t)}
		cmds[i].Stdout, cmds[i].Stderr = outs[i][0], outs[i][1]
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	wins, lost := 0, 0
	var odd []string
	for i, c := range cmds {
		err := c.Wait()
		r := result{Stdout: readBack(t, outs[i][0]), Stderr: readBack(t, outs[i][1])}
		r.Code, _ = exitCode(err)
		switch {
		case err == nil:
			wins++
		case r.Code > 0 && strings.Contains(r.Stderr, "exists"):
			lost++
		default:
			odd = append(odd, r.String())
		}
	}
	if wins != 1 || lost != n-1 {
		t.Fatalf("round %d: %d creates won, %d failed with \"exists\", want 1 and %d; other outcomes:\n  %s",
			round, wins, lost, n-1, strings.Join(odd, "\n  "))
	}
	if st := taskState(t, b.ID); st.Status != lifecycle.Created || !alive(st.PID) {
		t.Fatalf("round %d: the winner reads %s with anchor %d (alive %v)", round, st.Status, st.PID, alive(st.PID))
	}
	mustMoor(t, "start", b.ID)
	waitStatus(t, b.ID, lifecycle.Running)
	if writable {
		scratchDir := filepath.Join(stateRoot, ".scratch", "default", b.ID)
		if m := mountsUnder(t, scratchDir); len(m) != 1 || m[0] != filepath.Join(scratchDir, "root") {
			t.Fatalf("round %d: mounts under the winner's scratch %v, want its overlay on root", round, m)
		}
		if out := mustMoor(t, "exec", b.ID, "sh", "-c", "echo written > /probe && cat /probe"); out != "written\n" {
			t.Fatalf("round %d: a write to the winner's root: %q", round, out)
		}
		if got := readFile(t, filepath.Join(scratchDir, "upper", "probe")); got != "written\n" {
			t.Fatalf("round %d: the write is not in the winner's upper directory: %q", round, got)
		}
	} else if out := mustMoor(t, "exec", b.ID, "cat", "/etc/group"); !strings.HasPrefix(out, "root:") {
		t.Fatalf("round %d: the winner's root: /etc/group reads %q", round, out)
	}
	mustMoor(t, "delete", "--force", b.ID)
	requireNothingLeft(t, fmt.Sprintf("round %d's delete", round), b.ID, b.Spec.Linux.CgroupsPath)
}
