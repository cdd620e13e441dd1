package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Exit statuses of the exec stage, a shell's.
const (
	ExitCannotRun = 126 // found but not executable
	ExitNotFound  = 127
)

// rlimits are Linux's resource numbers by OCI name (the same on amd64
// and arm64).
var rlimits = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
	"RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
	"RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
	"RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

// Exec is the exec stage: it reads ConfigFile, sets up the process and
// executes the app in its place. It returns only on failure, with the
// exit status the stage must end with; the reason went to stderr (the
// app's stderr port).
func Exec(stderr io.Writer) int { return execStage(ConfigFile, AppRoot, stderr) }

// execStage is Exec with the configuration file and the app's root given.
func execStage(file, root string, stderr io.Writer) int {
	cfg, err := ReadConfig(file)
	if err != nil {
		fmt.Fprintf(stderr, "moor-guest: %v\n", err)
		return ExitSetup
	}
	code, err := execApp(cfg.Process, root)
	fmt.Fprintf(stderr, "moor-guest: %v\n", err)
	return code
}

// ReadConfig reads the guest init's configuration.
func ReadConfig(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read config %s: %w", file, err)
	}
	if len(c.Process.Args) == 0 || c.Process.Args[0] == "" {
		return nil, fmt.Errorf("read config %s: process.args is empty", file)
	}
	return &c, nil
}

// execApp applies p (rlimits, root, groups, user, umask, no_new_privs,
// working directory) and executes its args; it returns only on failure.
func execApp(p Process, root string) (int, error) {
	for _, r := range p.Rlimits {
		res, ok := rlimits[r.Type]
		if !ok {
			return ExitSetup, fmt.Errorf("set rlimit: unknown %s", r.Type)
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return ExitSetup, fmt.Errorf("set rlimit %s: %w", r.Type, err)
		}
	}
	if err := unix.Chroot(root); err != nil {
		return ExitSetup, fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return ExitSetup, fmt.Errorf("chdir /: %w", err)
	}
	gids := make([]int, len(p.AdditionalGids))
	for i, g := range p.AdditionalGids {
		gids[i] = int(g)
	}
	if err := unix.Setgroups(gids); err != nil {
		return ExitSetup, fmt.Errorf("set groups: %w", err)
	}
	if err := unix.Setgid(int(p.GID)); err != nil {
		return ExitSetup, fmt.Errorf("set gid %d: %w", p.GID, err)
	}
	if err := unix.Setuid(int(p.UID)); err != nil {
		return ExitSetup, fmt.Errorf("set uid %d: %w", p.UID, err)
	}
	if p.Umask != nil {
		unix.Umask(int(*p.Umask))
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return ExitSetup, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return ExitSetup, fmt.Errorf("chdir %s: %w", cwd, err)
	}
	prog, err := lookPath(p.Args[0], envValue(p.Env, "PATH"))
	if err != nil {
		return ExitNotFound, err
	}
	err = unix.Exec(prog, p.Args, p.Env)
	if errors.Is(err, unix.ENOENT) {
		return ExitNotFound, fmt.Errorf("exec %s: %w", prog, err)
	}
	return ExitCannotRun, fmt.Errorf("exec %s: %w", prog, err)
}

// envValue is the value of name in env, the last one set.
func envValue(env []string, name string) string {
	v := ""
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// defaultPath is searched when the app's environment has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds prog as a shell would: as it is when it holds a /, else
// in the directories of pathList.
func lookPath(prog, pathList string) (string, error) {
	if strings.Contains(prog, "/") {
		return prog, nil
	}
	if pathList == "" {
		pathList = defaultPath
	}
	for _, dir := range strings.Split(pathList, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, prog)
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s in PATH %s: %w", prog, pathList, os.ErrNotExist)
}
