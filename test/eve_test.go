package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/internal/evebox"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/procfs"
	"github.com/lf-edge/moor/supervisor"
)

// eveCgroupRe matches the log line of a task created in an EVE cgroup.
func eveCreated(prefix, name string) *regexp.Regexp {
	return regexp.MustCompile(`msg="task created" namespace=services\.linuxkit id=` + name + ` pid=\d+ cgroup=` + regexp.QuoteMeta(prefix+"/eve/services/"+name) + `\b`)
}

// TestEVETreeSupervise boots the EVE-shaped tree under `moor supervise`
// as a child subreaper, with no --cgroup-parent: each service runs in its
// spec's absolute cgroup, with its oom_score_adj; onboot comes first, in
// order; pillar has the host's PID namespace and its root read-only at
// /hostfs; a service killed with SIGKILL is recorded as 137/SIGKILL; at
// SIGTERM the services stop in reverse order and nothing is left. The
// supervisor runs in a PID namespace of the test's own (under unshare, with
// a shell as its init), so that pillar's "host" PID namespace is never
// this machine's; the cgroups are /eve/services/<name> below the test's
// own parent, as the machine's rules want (the guest test below uses
// /eve/services/<name> itself).
func TestEVETreeSupervise(t *testing.T) {
	dir := filepath.Join(scratch, taskID(t))
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &evebox.Tree{Dir: filepath.Join(dir, "containers"), Root: busyboxRoot, CgPrefix: cgroupRunParent + "-eve",
		Persist: filepath.Join(dir, "persist"), SysctlD: filepath.Join(dir, "sysctl.d")}
	for _, d := range []string{e.Persist, e.SysctlD} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.SysctlD, "00-eve.conf"), []byte("net.ipv4.ip_forward = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Write(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory", "/sys/fs/cgroup"} {
			if _, err := os.Stat(filepath.Join(p, e.CgPrefix)); err == nil {
				t.Errorf("cgroup %s%s is left", p, e.CgPrefix)
			}
		}
	})

	logs := filepath.Join(dir, "logs")
	sup, moorPID := superviseInPIDNS(t, e.Dir, logs)
	state := func(id string) (lifecycle.State, bool) {
		return stateInside(t, moorPID, supervisor.SystemNamespace, id)
	}
	names := []string{"newlogd", "watchdog", "wlan", "pillar"}
	waitFor(t, 60*time.Second, "every EVE service to run", func() bool {
		for _, n := range names {
			if st, ok := state(n); !ok || st.Status != lifecycle.Running {
				return false
			}
		}
		return true
	})
	logOf := func(n string) string { b, _ := os.ReadFile(filepath.Join(logs, n+".log")); return string(b) }
	waitFor(t, 10*time.Second, "pillar to report", func() bool { return strings.Contains(logOf("pillar"), "pillar up") })
	slog := sup.log(t)
	for _, n := range names {
		if !eveCreated(e.CgPrefix, n).MatchString(slog) {
			t.Errorf("service %s was not created in cgroup %s/eve/services/%s", n, e.CgPrefix, n)
		}
		if want := fmt.Sprintf("oom_score_adj=%d", evebox.OOMScoreAdj); n != "pillar" && !strings.Contains(logOf(n), want) {
			t.Errorf("%s's log %q has no %s", n, logOf(n), want)
		}
	}
	for _, want := range []string{"rngd: entropy seeded", "sysctl: applied 00-eve.conf", "storage-init: /persist ready"} {
		if id := strings.SplitN(want, ":", 2)[0]; !strings.Contains(logOf(id), want) {
			t.Errorf("onboot %s's log has no %q: %q", id, want, logOf(id))
		}
	}
	i := strings.Index(slog, `msg="onboot task done" component=supervise id=storage-init`)
	j := strings.Index(slog, `msg="task created" namespace=services.linuxkit id=newlogd`)
	if i < 0 || j < 0 || i > j {
		t.Errorf("onboot did not end before the services began (%d, %d)", i, j)
	}
	for k, n := range []string{"rngd", "sysctl", "modprobe"} {
		a := strings.Index(slog, "onboot task done\" component=supervise id="+n)
		b := strings.Index(slog, "onboot task done\" component=supervise id="+[]string{"sysctl", "modprobe", "storage-init"}[k])
		if a < 0 || b < 0 || a > b {
			t.Errorf("onboot %s did not finish, or not before the next", n)
		}
	}
	if p := logOf("pillar"); !strings.Contains(p, "hostfs_ro=yes") || !strings.Contains(p, "persist=ready") || !strings.Contains(p, "pid1=sh") {
		t.Errorf("pillar's view: %q, want the host root read-only, /persist shared and the supervisor's PID namespace", p)
	}
	// pillar shares the supervisor's PID namespace; the others do not.
	pst, _ := state("pillar")
	nst, _ := state("newlogd")
	if nsOf(t, hostPID(t, moorPID, pst.PID), "pid") != nsOf(t, moorPID, "pid") || nsOf(t, hostPID(t, moorPID, nst.PID), "pid") == nsOf(t, moorPID, "pid") {
		t.Error("pillar is not in the supervisor's PID namespace, or newlogd is")
	}

	// A service killed with SIGKILL: its exit is 137/SIGKILL.
	if err := unix.Kill(hostPID(t, moorPID, nst.PID), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "newlogd's exit to be recorded", func() bool {
		st, ok := state("newlogd")
		return ok && exitRecorded(st)
	})
	if st, _ := state("newlogd"); st.Exit.Code != 137 || st.Exit.Signal != "SIGKILL" {
		t.Errorf("newlogd killed: exit %+v, want 137 SIGKILL", st.Exit)
	}

	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("supervisor exit %d, want 0", code)
	}
	slog = sup.log(t)
	last := -1
	for _, n := range []string{"wlan", "watchdog", "pillar"} { // reverse start order
		k := strings.Index(logOf(n), n+" got TERM")
		if k < 0 {
			t.Errorf("%s got no SIGTERM at shutdown", n)
		}
		at := strings.Index(slog, `msg="task stopped" namespace=services.linuxkit id=`+n)
		if at < last {
			t.Errorf("%s stopped before a service started before it", n)
		}
		last = at
	}
	if _, err := os.Stat("/pillar-was-here"); err == nil {
		os.Remove("/pillar-was-here")
		t.Error("pillar wrote to the host's root through /hostfs")
	}
}

// superviseInPIDNS runs `moor supervise` of tree as a child subreaper in
// a PID namespace of the test's own, whose init is a shell: a task with
// the "host's" PID namespace gets that one, never this machine's. It
// returns the supervisor and moor's host PID.
func superviseInPIDNS(t *testing.T, tree, logs string) (*supervise, int) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child", "/bin/sh", "-c",
		`"$@" & wait $!`, "sh", moorBin, "--root", stateRoot, "--debug", "supervise", "--containers", tree, "--log-dir", logs)
	sup := startSupervise(t, cmd, nil)
	shPID := childOf(t, cmd.Process.Pid)
	var moorPID int
	waitFor(t, 10*time.Second, "moor under the namespace's shell", func() bool {
		if c := children(shPID); len(c) == 1 {
			moorPID = c[0]
		}
		return moorPID != 0
	})
	sup.target = moorPID
	return sup, moorPID
}

// stateInside reads `moor state` of a task in the PID namespace of the
// process pid, whose PIDs its records hold.
func stateInside(t *testing.T, pid int, namespace, id string) (lifecycle.State, bool) {
	t.Helper()
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Fatalf("nsenter (util-linux) is needed: %v", err)
	}
	out, err := exec.Command(nsenter, "--target", strconv.Itoa(pid), "--pid", "--mount", moorBin, "--root", stateRoot,
		"--namespace", namespace, "state", id).Output()
	var st lifecycle.State
	return st, err == nil && json.Unmarshal(out, &st) == nil
}

// TestAppExitRecordedByInit: a service with the host's PID namespace
// (pillar's shape: every capability, the state root, moor and the cgroup
// file system bound in) creates a user app with the moor CLI, which then
// exits; the app's anchor, orphaned, is reaped by the supervisor, which
// records its exit in the app's record, of another namespace: killed, it
// reads 137/SIGKILL, as a foreground run would report.
func TestAppExitRecordedByInit(t *testing.T) {
	dir := filepath.Join(scratch, taskID(t))
	t.Cleanup(func() { os.RemoveAll(dir) })
	tree := filepath.Join(dir, "containers")
	app := newBundle(t, "sleep", "1000")
	app.write(t)
	script := fmt.Sprintf(`%[1]s --root %[2]s --namespace eve-user-apps run --detach --bundle %[3]s %[4]s && echo app created
trap 'exit 0' TERM; while :; do sleep 0.2; done`, moorBin, stateRoot, app.Dir, app.ID)
	// pillar's root is a copy of its own: the bind mounts' points are
	// made in it.
	root := filepath.Join(dir, "pillar-root")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", busyboxRoot, root).CombinedOutput(); err != nil {
		t.Fatalf("copy busybox root: %v: %s", err, out)
	}
	s := evebox.LinuxkitSpec(root, "/bin/sh", "-c", script)
	s.Linux.CgroupsPath = cgroupParent + "/" + taskID(t)
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: evebox.AllCaps, Effective: evebox.AllCaps, Permitted: evebox.AllCaps}
	s.Linux.Namespaces = evebox.Without(s.Linux.Namespaces, specs.PIDNamespace)
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys/fs/cgroup" })
	for _, p := range []string{"/dev", "/sys/fs/cgroup", filepath.Dir(moorBin), stateRoot, app.Dir, busyboxRoot} {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: p, Type: "bind", Source: p, Options: []string{"rbind", "rw"}})
	}
	b, _ := json.Marshal(s)
	if err := os.MkdirAll(filepath.Join(tree, "services", "pillar"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "services", "pillar", "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sup, moorPID := superviseInPIDNS(t, tree, filepath.Join(dir, "logs"))
	t.Cleanup(func() { moor(t, "--namespace", "eve-user-apps", "delete", "--force", app.ID) })
	var st lifecycle.State
	waitFor(t, 20*time.Second, "the app made from inside pillar to run", func() bool {
		var ok bool
		st, ok = stateInside(t, moorPID, "eve-user-apps", app.ID)
		return ok && st.Status == lifecycle.Running
	})
	if err := unix.Kill(hostPID(t, moorPID, st.PID), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the app's exit to be recorded", func() bool {
		st, _ = stateInside(t, moorPID, "eve-user-apps", app.ID)
		return exitRecorded(st)
	})
	if st.Exit == nil || st.Exit.Code != 137 || st.Exit.Signal != "SIGKILL" {
		t.Fatalf("the app's exit: %+v, want 137 SIGKILL recorded by the supervisor that reaped it", st.Exit)
	}
	mustMoor(t, "--namespace", "eve-user-apps", "delete", app.ID)
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("supervisor exit %d", code)
	}
}

// hostPID is the host PID of a descendant of sup whose PID in sup's
// PID namespace is pid.
func hostPID(t *testing.T, sup, pid int) int {
	t.Helper()
	level := len(nspid(sup)) - 1 // sup's namespace's place in NSpid
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := nspid(p); len(f) > level && f[level] == strconv.Itoa(pid) && descends(p, sup) {
			return p
		}
	}
	t.Fatalf("no process %d in the PID namespace of %d", pid, sup)
	return 0
}

// nspid is the NSpid line of a process's status: its PID in each PID
// namespace it is in, the host's first.
func nspid(pid int) []string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

// descends reports whether p is anc or one of its descendants.
func descends(p, anc int) bool {
	for p > 1 {
		if p == anc {
			return true
		}
		st, err := procfs.ReadStat(procfs.Root, p)
		if err != nil {
			return false
		}
		p = st.PPID
	}
	return false
}

// nsOf is the namespace link of pid's namespace of the given type.
func nsOf(t *testing.T, pid int, typ string) string {
	t.Helper()
	l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, typ))
	return l
}

// pillarKills is pillar's script in the guest: it drives moor as EVE's
// pillar would, through the machine's own moor binary (/init) and state
// root seen at /hostfs, and SIGKILLs newlogd's anchor by the PID moor
// reports.
const pillarKills = `n=0; while [ $n -lt 100 ]; do
  pid=$(/hostfs/init --root /hostfs/run/moor --namespace services.linuxkit state newlogd 2>/dev/null | sed -n 's/^  "pid": \([0-9]*\),$/\1/p')
  [ -n "$pid" ] && [ "$pid" != 0 ] && break; n=$((n+1)); sleep 0.2
done
echo "pillar kills newlogd $pid"; kill -9 "$pid"
`

// TestEVETreeMachine boots the EVE-shaped tree with moor as PID 1 of a
// TCG machine (Debian's kernel), its cgroups /eve/services/<name> as
// EVE's rootfs.yml writes them: onboot first, in order; every service in
// its cgroup with its oom_score_adj; pillar in the machine's PID
// namespace with its root read-only at /hostfs, from where it finds
// newlogd through moor and kills it: PID 1 records 137/SIGKILL; the power
// button stops the services in reverse order and powers off.
func TestEVETreeMachine(t *testing.T) {
	tr := newMachineTree(t)
	e := &evebox.Tree{Dir: tr.Dir, Root: "/containers/rootfs", Persist: "/containers/persist", SysctlD: "/containers/sysctl.d"}
	for _, d := range []string{"persist", "sysctl.d"} {
		if err := os.MkdirAll(filepath.Join(tr.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tr.Dir, "sysctl.d", "00-eve.conf"), []byte("net.ipv4.ip_forward = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Write(); err != nil {
		t.Fatal(err)
	}
	// pillar also drives moor: it kills newlogd once it runs.
	editSpec(t, filepath.Join(tr.Dir, "services", "pillar"), func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", pillarKills + evebox.PillarScript}
	})
	g := bootMachine(t, tr, "")
	g.figures(t)
	for _, n := range []string{"pillar", "watchdog", "wlan"} { // each has set its SIGTERM trap
		g.waitConsole(t, 30*time.Second, `\[`+n+`\] `+n+` up`)
	}
	g.waitConsole(t, 30*time.Second, `msg="task exited" namespace=services\.linuxkit id=newlogd pid=\d+ code=137 reason=signaled signal=SIGKILL`)

	con := g.consoleText()
	for _, n := range []string{"newlogd", "watchdog", "wlan", "pillar"} {
		if !eveCreated("", n).MatchString(con) {
			t.Errorf("console: service %s was not created in cgroup /eve/services/%s", n, n)
		}
	}
	for _, want := range []string{
		"[rngd] rngd: entropy seeded", "[sysctl] sysctl: applied 00-eve.conf", "[storage-init] storage-init: /persist ready",
		fmt.Sprintf("[watchdog] watchdog up oom_score_adj=%d", evebox.OOMScoreAdj),
		"[pillar] pillar up hostfs_ro=yes pid1=init persist=ready",
		"[pillar] pillar kills newlogd ",
	} {
		if !strings.Contains(con, want) {
			t.Errorf("console has no %q", want)
		}
	}
	before(t, con, "[rngd] rngd: entropy seeded", "[sysctl] sysctl: applied")
	before(t, con, "[sysctl] sysctl: applied", "[storage-init] storage-init")
	before(t, con, "[storage-init] storage-init", `id=newlogd`)

	g.qmpRun(t, "system_powerdown", nil)
	g.waitExit(t, 3*time.Second+machineDownMargin)
	con = g.consoleText()
	before(t, con, "[wlan] wlan got TERM", "[watchdog] watchdog got TERM")
	before(t, con, "[watchdog] watchdog got TERM", "[pillar] pillar got TERM")
	if !strings.Contains(con, "reboot: Power down") {
		t.Error("the machine did not power off")
	}
}
