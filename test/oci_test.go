package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/lifecycle"
)

// TestSpecWithoutResources: the OCI verbs accept what runc accepts, a
// spec without memory or CPU sections among them (containerd's default).
func TestSpecWithoutResources(t *testing.T) {
	b := newBundle(t, "echo", "no limits")
	b.Spec.Linux.Resources = nil
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	if out := mustMoor(t, "run", "--bundle", b.Dir, b.ID); out != "no limits\n" {
		t.Fatalf("run of a spec without resources: %q", out)
	}
}

// TestSeedKeepsMinimumSpec: EVE's user-app path keeps its rule: a seeded
// spec without a memory limit is refused, naming the field, and no
// config.json is written.
func TestSeedKeepsMinimumSpec(t *testing.T) {
	vol := filepath.Join(scratch, taskID(t))
	if err := os.MkdirAll(filepath.Join(vol, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(vol) })
	b := newBundle(t, "true")
	b.Spec.Root.Path = "rootfs"
	b.Spec.Linux.Resources.Memory = nil
	raw, err := json.Marshal(b.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(b.Dir, "seeded")
	r := moor(t, "spec", "--seed", vol, "--bundle", out)
	if r.Code == 0 || !strings.Contains(r.Stderr, "linux.resources.memory") {
		t.Fatalf("spec --seed of a volume without a memory limit: %v", r)
	}
	if _, err := os.Stat(filepath.Join(out, "config.json")); !os.IsNotExist(err) {
		t.Fatalf("a refused seed wrote config.json: %v", err)
	}
}

// TestRelativeCgroupsPath: a relative linux.cgroupsPath is placed under
// the cgroup of the process that creates the task, as runc places it, and
// delete removes it with the parents it made.
func TestRelativeCgroupsPath(t *testing.T) {
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	caller := cgroupParent + "/caller-" + taskID(t)
	for _, h := range hier {
		dir := filepath.Join(h, caller)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
		fillCpuset(t, h, caller)
	}
	b := newBundle(t, "sleep", "60")
	b.Spec.Linux.CgroupsPath = "made/" + b.ID
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	// The creating moor joins the caller cgroup in every hierarchy first.
	var join strings.Builder
	for _, h := range hier {
		fmt.Fprintf(&join, "echo $$ > %s/cgroup.procs && ", filepath.Join(h, caller))
	}
	cmd := moorCmd("create", "--bundle", b.Dir, b.ID)
	cmd.Args = append([]string{"sh", "-c", join.String() + `exec "$0" "$@"`}, cmd.Args...)
	cmd.Path = "/bin/sh"
	out := tempFile(t) // a file, not a pipe: the anchor keeps moor's stdio
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		t.Fatalf("create from the caller cgroup: %v\n%s", err, readBack(t, out))
	}
	out.Close()
	leaf := caller + "/made/" + b.ID
	if !cgroup.Exists(hier, leaf) {
		t.Fatalf("task cgroup %s was not made under the caller's cgroup", leaf)
	}
	pid := taskState(t, b.ID).PID
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil || !strings.Contains(string(own), leaf) {
		t.Fatalf("anchor's cgroups %q (%v), want %s", own, err, leaf)
	}
	mustMoor(t, "delete", "--force", b.ID)
	if cgroup.Exists(hier, leaf) || cgroup.Exists(hier, caller+"/made") {
		t.Fatalf("delete left the task's cgroup or the parent it made under %s", caller)
	}
}

// TestDeleteNeedsForce: delete of a created or running task fails without
// --force and changes nothing; with it the task is gone.
func TestDeleteNeedsForce(t *testing.T) {
	b := newBundle(t, "sleep", "60")
	createTask(t, b)
	for _, step := range []string{"created", "running"} {
		if step == "running" {
			mustMoor(t, "start", b.ID)
		}
		r := moor(t, "delete", b.ID)
		if r.Code == 0 || !strings.Contains(r.Stderr, "status is "+step) {
			t.Fatalf("delete of a %s task: %v", step, r)
		}
		st := taskState(t, b.ID)
		if string(st.Status.String()) != step || !alive(st.PID) || cgroupGone(t, b.ID) {
			t.Fatalf("a refused delete changed the task: %+v", st)
		}
	}
	mustMoor(t, "delete", "--force", b.ID)
	if r := moor(t, "state", b.ID); r.Code == 0 || !cgroupGone(t, b.ID) {
		t.Fatalf("delete --force left the task: %v", r)
	}
}

// TestKillAllStopped: kill --all of a stopped task signals whatever is
// left in its cgroup and succeeds, as runc does (containerd's shim sends
// it after the task's init exited); kill without --all still refuses.
func TestKillAllStopped(t *testing.T) {
	b := newBundle(t, "true")
	runDetached(t, b)
	waitStatus(t, b.ID, lifecycle.Stopped)
	if r := moor(t, "kill", "--all", b.ID, "9"); r.Code != 0 {
		t.Fatalf("kill --all of a stopped task: %v", r)
	}
	if r := moor(t, "kill", b.ID, "9"); r.Code == 0 || !strings.Contains(r.Stderr, "status is stopped") {
		t.Fatalf("kill of a stopped task's anchor: %v", r)
	}
	mustMoor(t, "delete", b.ID)
}

// TestHookStates: every hook gets the container state on stdin with the
// status of its moment (prestart, createRuntime, createContainer,
// startContainer: created; poststart: running; poststop: stopped).
func TestHookStates(t *testing.T) {
	b := newBundle(t, "sleep", "60")
	dir := filepath.Join(b.Dir, "hooks")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/hooks", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}})
	record := func(name, in string) []specs.Hook {
		return []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + in + "/" + name + ".json"}}}
	}
	b.Spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 the deprecated prestart hook must still run
		Prestart:        record("prestart", dir),
		CreateRuntime:   record("createRuntime", dir),
		CreateContainer: record("createContainer", dir),
		StartContainer:  record("startContainer", "/hooks"), // runs in the task's root
		Poststart:       record("poststart", dir),
		Poststop:        record("poststop", dir),
	}
	createTask(t, b)
	mustMoor(t, "start", b.ID)
	pid := taskState(t, b.ID).PID
	mustMoor(t, "delete", "--force", b.ID)
	want := map[string]specs.ContainerState{
		"prestart": specs.StateCreated, "createRuntime": specs.StateCreated,
		"createContainer": specs.StateCreated, "startContainer": specs.StateCreated,
		"poststart": specs.StateRunning, "poststop": specs.StateStopped,
	}
	for name, status := range want {
		raw, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil {
			t.Errorf("%s hook did not run: %v", name, err)
			continue
		}
		var st specs.State
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Errorf("%s hook's stdin: %v: %q", name, err, raw)
			continue
		}
		if st.Status != status || st.ID != b.ID {
			t.Errorf("%s hook got status %q, id %q; want %q, %q", name, st.Status, st.ID, status, b.ID)
		}
		if name == "poststart" && st.Pid != pid {
			t.Errorf("poststart hook got pid %d, want the anchor's %d", st.Pid, pid)
		}
	}
}

// TestFailingPostHooksWarn: a failing poststart or poststop hook is a
// warning, not an error: the task runs, and delete removes it.
func TestFailingPostHooksWarn(t *testing.T) {
	b := newBundle(t, "sleep", "60")
	fail := []specs.Hook{{Path: "/bin/false"}}
	b.Spec.Hooks = &specs.Hooks{Poststart: fail, Poststop: fail}
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	r := moor(t, "run", "--detach", "--bundle", b.Dir, b.ID)
	if r.Code != 0 || !strings.Contains(r.Stderr, "poststart hook failed") {
		t.Fatalf("run with a failing poststart hook: %v", r)
	}
	if st := taskState(t, b.ID); st.Status != lifecycle.Running {
		t.Fatalf("task after a failing poststart hook: %s", st.Status)
	}
	r = moor(t, "delete", "--force", b.ID)
	if r.Code != 0 || !strings.Contains(r.Stderr, "poststop hook failed") {
		t.Fatalf("delete with a failing poststop hook: %v", r)
	}
	if !cgroupGone(t, b.ID) {
		t.Fatal("delete left the cgroup")
	}
}

// fillCpuset gives every cgroup on the way to p in a v1 cpuset hierarchy
// its parent's CPUs and memory nodes: a process cannot join a cpuset
// cgroup that has none.
func fillCpuset(t *testing.T, hierarchy, p string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(hierarchy, "cpuset.cpus")); err != nil {
		return // not a cpuset hierarchy
	}
	dir := hierarchy
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		parent := dir
		dir = filepath.Join(dir, part)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(cur)) != "" {
				continue
			}
			val, err := os.ReadFile(filepath.Join(parent, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), val, 0o644); err != nil {
				t.Fatalf("fill %s: %v", filepath.Join(dir, f), err)
			}
		}
	}
}

// TestConformanceShapes: what the OCI conformance suite asks and this
// libcontainer would refuse: a deny-by-default seccomp profile that does
// not name statx (no noNewPrivileges), a FIFO device with major:minor
// numbers, and filesystem options on a bind mount. Each task runs.
func TestConformanceShapes(t *testing.T) {
	b := newBundle(t, "sh", "-c", "test -p /dev/fifo && test -d /bound && echo ran")
	b.Spec.Process.NoNewPrivileges = false
	allow := strings.Fields(`read write openat open close fstat newfstatat lseek mmap mprotect munmap brk rt_sigaction
		rt_sigprocmask rt_sigreturn ioctl pread64 access pipe pipe2 select dup dup2 dup3 getpid clone clone3 fork vfork execve exit
		wait4 kill uname fcntl getcwd chdir fchdir getuid getgid geteuid getegid getppid getpgrp setsid setuid setgid setgroups
		capget capset prctl arch_prctl set_tid_address exit_group epoll_wait epoll_ctl epoll_create1 tgkill futex sched_yield
		getdents64 readlink readlinkat faccessat faccessat2 set_robust_list rseq prlimit64 getrandom poll ppoll stat lstat
		nanosleep clock_nanosleep sigaltstack gettid setpgid getpgid keyctl mkdirat unlinkat umask sched_getaffinity write writev
		close_range fchown fchmod fchmodat fchownat statfs fstatfs mount umount2 pivot_root sethostname`)
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{{Names: allow, Action: specs.ActAllow}},
	}
	major, minor := int64(8), int64(666)
	b.Spec.Linux.Devices = append(b.Spec.Linux.Devices, specs.LinuxDevice{Path: "/dev/fifo", Type: "p", Major: major, Minor: minor})
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/bound", Type: "bind", Source: b.Dir, Options: []string{"rbind", "ro", "mode=755", "size=1k"}})
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	if out := mustMoor(t, "run", "--bundle", b.Dir, b.ID); out != "ran\n" {
		t.Fatalf("run: %q", out)
	}
}
