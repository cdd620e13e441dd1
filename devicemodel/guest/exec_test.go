package guest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lf-edge/moor/reaper"
)

// execIn runs the exec stage in a child (the test binary) for p, with /
// as the app's root, and returns its output and exit status.
func execIn(t *testing.T, p Process) (string, int) {
	t.Helper()
	b, err := json.Marshal(Config{Process: p})
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "app.json")
	write(t, cfg, string(b), 0o644)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{execConfigEnv + "=" + cfg}
	out, _ := outputs(t) // a file: the reaper, not cmd.Wait, ends the child
	cmd.Stdout, cmd.Stderr = out, out
	done := make(chan reaper.Reaped, 1)
	if err := rp.Start(cmd, func(r reaper.Reaped) { done <- r }); err != nil {
		t.Fatal(err)
	}
	r := await(t, done)
	return content(t, out), r.Code()
}

// The exec stage applies the rlimits, the groups, the user, the umask,
// no_new_privs and the working directory, and executes the app with its
// environment, found in its PATH.
func TestExecStage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the exec stage test needs root: it changes user")
	}
	umask := uint32(0o027)
	p := Process{
		Args: []string{"sh", "-c", `id -u; id -G; ulimit -n; umask; pwd; echo "$FOO"; grep NoNewPrivs /proc/self/status`},
		Env:  []string{"FOO=bar", "PATH=/nonexistent:/usr/bin:/bin"}, Cwd: "/tmp",
		UID: 65534, GID: 65534, AdditionalGids: []uint32{100}, Umask: &umask,
		Rlimits:         []Rlimit{{Type: "RLIMIT_NOFILE", Hard: 200, Soft: 100}},
		NoNewPrivileges: true,
	}
	out, code := execIn(t, p)
	if want := "65534\n65534 100\n100\n0027\n/tmp\nbar\nNoNewPrivs:\t1\n"; code != 0 || out != want {
		t.Errorf("the app ran with\n%s(exit %d), want\n%s", out, code, want)
	}
}

// The exec stage ends as a shell would: 127 for an app not found, 126 for
// one it cannot execute, ExitSetup for a setup that failed.
func TestExecStageFails(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "app")
	write(t, notExec, "#!/bin/sh\n", 0o644)
	for _, c := range []struct {
		name string
		p    Process
		code int
	}{
		{"not found", Process{Args: []string{"no-such-app"}}, ExitNotFound},
		{"not found by path", Process{Args: []string{"/no/such/app"}}, ExitNotFound},
		{"not executable", Process{Args: []string{notExec}}, ExitCannotRun},
		{"unknown rlimit", Process{Args: []string{"true"}, Rlimits: []Rlimit{{Type: "RLIMIT_BOGUS"}}}, ExitSetup},
		{"no working directory", Process{Args: []string{"true"}, Cwd: "/no/such/dir"}, ExitSetup},
		{"no args", Process{}, ExitSetup},
	} {
		out, code := execIn(t, c.p)
		if code != c.code || !strings.HasPrefix(out, "moor-guest: ") {
			t.Errorf("%s: exit %d, output %q; want %d and the reason", c.name, code, out, c.code)
		}
	}
}
