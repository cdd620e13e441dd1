package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/reaper"
)

// ErrNoUserNS means the kernel cannot make user namespaces (not built in,
// or user.max_user_namespaces is 0).
var ErrNoUserNS = errors.New("user namespaces are not available on this kernel")

// Supported reports whether this kernel can make user namespaces, from
// procRoot (normally /proc).
func Supported(procRoot string) error {
	if _, err := os.Stat(filepath.Join(procRoot, "self", "ns", "user")); err != nil {
		return fmt.Errorf("%w: %w", ErrNoUserNS, err)
	}
	b, err := os.ReadFile(filepath.Join(procRoot, "sys", "user", "max_user_namespaces"))
	if err != nil {
		return nil // an older kernel without the knob has no such limit
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n == 0 {
		return fmt.Errorf("%w: user.max_user_namespaces is 0", ErrNoUserNS)
	}
	return nil
}

// newNS makes a user namespace with the given mappings and returns an
// open file of it (/proc/<pid>/ns/user of a helper that is gone once this
// returns): what mount_setattr(2) needs to idmap a mount. The helper is a
// child of the caller, stopped by ptrace before it runs any code of its
// own, then killed. It is started through rp, the process's reaper (nil
// when it has none), whose Start hands its exit back here: the reaper
// need not be held.
func newNS(rp *reaper.Reaper, uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	if len(uids) == 0 || len(gids) == 0 {
		return nil, errors.New("new user namespace: want UID and GID mappings")
	}
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{"moor-userns"}, SysProcAttr: &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: sysMaps(uids),
		GidMappings: sysMaps(gids),
		// PTRACE_TRACEME stops the helper at its execve: it never runs.
		Ptrace: true,
	}}
	gone := make(chan reaper.Reaped, 1)
	if err := rp.Start(cmd, func(r reaper.Reaped) { gone <- r }); err != nil {
		return nil, fmt.Errorf("new user namespace: helper: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		<-gone
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("new user namespace: %w", err)
	}
	return f, nil
}

func sysMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, r := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(r.ContainerID), HostID: int(r.HostID), Size: int(r.Size)}
	}
	return out
}
