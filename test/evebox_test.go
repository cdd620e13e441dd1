package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lf-edge/moor/internal/evebox"
)

// boxTimeout bounds the box's probe: the boot, the apps' starts and the
// three kills with their restarts, under TCG.
const boxTimeout = 4 * time.Minute

// TestEVEInABox is a minimal EVE without containerd: moor is PID 1 of a
// TCG machine (Debian's kernel) booting the EVE-shaped tree whose pillar
// is moor-taskmgr, the example task manager embedding moor's library. The
// probe service (debug) checks from inside, and this test from the console
// and QMP:
//   - the EVE services run in /eve/services/<name>;
//   - the task manager brings up three user apps in eve-user-apps (the
//     third described as a VM of mode nohyper), each in its own cgroup
//     /eve/apps/<name> with its memory and CPU limits, and no process
//     beyond the apps' own;
//   - app1 killed comes back with a new anchor and restarts 1, its exit
//     (137, SIGKILL) recorded by the task manager's reaper (it is the
//     anchor's parent);
//   - pillar killed leaves the apps running; its restart by policy adopts
//     them (same PIDs, three tasks);
//   - app2 killed then, an orphan of PID 1, has its exit recorded by PID 1
//     (moor) and comes back;
//   - the power button stops the services in reverse order and the apps
//     with pillar; no process is left when the tree is down, and the
//     machine powers off.
func TestEVEInABox(t *testing.T) {
	dir := filepath.Join(scratch, taskID(t))
	t.Cleanup(func() { os.RemoveAll(dir) })
	tr := &machineTree{Dir: filepath.Join(dir, "containers")}
	box := &evebox.Box{Dir: tr.Dir, Busybox: busyboxRoot, Taskmgr: filepath.Join(filepath.Dir(moorBin), taskmgrBinary)}
	if err := box.Write(); err != nil {
		t.Fatal(err)
	}
	g := bootMachine(t, tr, "")
	g.figures(t)
	deadline := time.Now().Add(boxTimeout)
	waitFor(t, boxTimeout, "the probe to finish", func() bool {
		con := g.consoleText()
		if m := regexp.MustCompile(`box: timed out waiting for [^\r\n]*`).FindString(con); m != "" {
			t.Fatalf("probe: %s", m)
		}
		return strings.Contains(con, "box: done") || time.Now().After(deadline)
	})
	con := g.consoleText()
	for _, n := range []string{"newlogd", "watchdog", "wlan", "pillar", "debug"} {
		if !eveCreated("", n).MatchString(con) {
			t.Errorf("console: service %s was not created in cgroup /eve/services/%s", n, n)
		}
	}
	for _, a := range evebox.Apps {
		want := fmt.Sprintf("box: %s cgroup=/eve/apps/%s memory.max=%d cpu.max=%d/100000", a, a, evebox.AppMemoryMiB<<20, evebox.AppCPUs*100000)
		if !strings.Contains(con, want) {
			t.Errorf("console has no %q", want)
		}
	}
	figure := func(re string) int {
		m := regexp.MustCompile(re).FindStringSubmatch(con)
		if m == nil {
			t.Fatalf("console has no %s", re)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	t.Logf("EVE in a box: apps running at %d ms of uptime, moor as PID 1 %d KiB, %d processes beyond the apps' own",
		figure(`box: apps running uptime_ms=(\d+)`), figure(`box: pid1_rss_kib=(\d+)`), figure(`extra_procs=(\d+)`))
	if n := figure(`extra_procs=(\d+)`); n != 0 {
		t.Errorf("%d processes beyond the apps' own and the services'", n)
	}

	// app1: a new anchor, restarts 1, its exit recorded as 137/SIGKILL.
	killed := figure(`box: killed app1 pid=(\d+)`)
	if back := figure(`box: app1 back pid=(\d+) restarts=1`); back == killed {
		t.Errorf("app1 came back with the same anchor %d", back)
	}
	if !regexp.MustCompile(fmt.Sprintf(`\[pillar\] .*msg="task exited" namespace=eve-user-apps id=app1 pid=%d code=137 reason=signaled signal=SIGKILL`, killed)).MatchString(con) {
		t.Error("console: app1's exit was not recorded as 137/SIGKILL")
	}
	// pillar: the apps outlive it and are adopted, not doubled.
	m := regexp.MustCompile(`box: pillar back pid=\d+ apps before=\[([\d ]+)\] after=\[([\d ]+)\] tasks=\s*(\d+)`).FindStringSubmatch(con)
	if m == nil || m[1] != m[2] || m[3] != "3" {
		t.Errorf("after pillar's restart: %q, want the same anchors and 3 tasks", m)
	}
	// app2, an orphan of PID 1 since pillar died: PID 1 records its exit.
	killed = figure(`box: killed app2 pid=(\d+)`)
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^[^\[\r\n]*msg="task exited" namespace=eve-user-apps id=app2 pid=%d code=137 reason=signaled signal=SIGKILL`, killed)).MatchString(con) {
		t.Error("console: PID 1 did not record app2's exit as 137/SIGKILL")
	}
	figure(`box: app2 back pid=(\d+) restarts=1`)

	g.qmpRun(t, "system_powerdown", nil)
	g.waitExit(t, 20*time.Second+machineDownMargin)
	con = g.consoleText()
	for _, a := range evebox.Apps {
		if !regexp.MustCompile(`\[pillar\] .*msg="task deleted" namespace=eve-user-apps id=` + a + `\b`).MatchString(con) {
			t.Errorf("console: pillar did not stop and delete %s at shutdown", a)
		}
	}
	stopped := func(id string) int {
		return strings.Index(con, `msg="task stopped" namespace=services.linuxkit id=`+id)
	}
	for _, pair := range [][2]string{{"wlan", "watchdog"}, {"watchdog", "pillar"}, {"pillar", "newlogd"}, {"newlogd", "debug"}} {
		if a, b := stopped(pair[0]), stopped(pair[1]); a < 0 || b < 0 || a > b {
			t.Errorf("console: %s (at %d) was not stopped before %s (at %d)", pair[0], a, pair[1], b)
		}
	}
	for _, want := range []string{`msg="processes left after the tree's shutdown" component=machine count=0`, "reboot: Power down"} {
		if !strings.Contains(con, want) {
			t.Errorf("console has no %q", want)
		}
	}
}
