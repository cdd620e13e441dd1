package fake

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/procfs"
)

// Step names a step of a fake container that Fail can make fail.
type Step string

const (
	StepCreate  Step = "create"
	StepStart   Step = "start"
	StepExec    Step = "exec"
	StepDestroy Step = "destroy"
)

// Runtime is the fake lifecycle.Runtime.
type Runtime struct {
	// Fail, when set, is asked before each step of the container id; an
	// error fails that step.
	Fail func(step Step, id string) error

	mu         sync.Mutex
	containers map[string]*Container // by state directory
}

// New returns an empty fake runtime.
func New() *Runtime { return &Runtime{containers: map[string]*Container{}} }

func (r *Runtime) fail(step Step, id string) error {
	if r.Fail == nil {
		return nil
	}
	if err := r.Fail(step, id); err != nil {
		return fmt.Errorf("fake %s of %s: %w", step, id, err)
	}
	return nil
}

// Create makes the container's state directory and a memory "cgroup"
// directory in it, where a test may write memory.oom_control.
func (r *Runtime) Create(root, id string, cfg *configs.Config) (lifecycle.Container, error) {
	if err := r.fail(StepCreate, id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o711); errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("container %s: %w", id, libcontainer.ErrExist)
	} else if err != nil {
		return nil, err
	}
	c := &Container{rt: r, id: id, dir: dir, cfg: *cfg, created: time.Now()}
	r.mu.Lock()
	r.containers[dir] = c
	r.mu.Unlock()
	return c, nil
}

// Load finds a container this Runtime made, while its directory exists.
func (r *Runtime) Load(root, id string) (lifecycle.Container, error) {
	dir := filepath.Join(root, id)
	r.mu.Lock()
	c := r.containers[dir]
	r.mu.Unlock()
	if _, err := os.Stat(dir); c == nil || err != nil {
		return nil, fmt.Errorf("container %s: %w", id, libcontainer.ErrNotExist)
	}
	return c, nil
}

// Container is a fake container: its anchor is a host process.
type Container struct {
	rt      *Runtime
	id, dir string
	created time.Time

	mu      sync.Mutex
	cfg     configs.Config
	pid     int
	start   uint64
	gate    *os.File // closed by Exec to let the anchor run
	started bool
	paused  bool
	execs   []int
}

// MemoryDir is where the container's OOM kills are counted
// (memory.oom_control); a test writes "oom_kill N" there.
func (c *Container) MemoryDir() string { return filepath.Join(c.dir, "memory") }

// PID is the anchor's PID, 0 before Start.
func (c *Container) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// Start forks the anchor: sh waits on a pipe until Exec, then execs the
// process's args.
func (c *Container) Start(p *libcontainer.Process) (int, error) {
	if err := c.rt.fail(StepStart, c.id); err != nil {
		return 0, err
	}
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer gateR.Close()
	args := append([]string{"-c", `read -r _ <&3; exec 3<&-; exec "$@"`, "sh"}, p.Args...)
	pid, err := c.spawn(p, "/bin/sh", args, gateR)
	if err != nil {
		gateW.Close()
		return 0, err
	}
	c.mu.Lock()
	c.pid, c.gate = pid, gateW
	c.mu.Unlock()
	if id, err := anchor.Capture(procfs.Root, pid); err == nil {
		c.start = id.StartTime
	}
	return pid, os.MkdirAll(c.MemoryDir(), 0o755)
}

// spawn starts a host process and leaves its reaping to the caller's
// reaper, as libcontainer does.
func (c *Container) spawn(p *libcontainer.Process, path string, args []string, extra ...*os.File) (int, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = p.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.Stdin, p.Stdout, p.Stderr
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release() // the reaper waits, not os/exec
	return pid, nil
}

// Exec lets the anchor run the task's process.
func (c *Container) Exec() error {
	if err := c.rt.fail(StepExec, c.id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate == nil {
		return errors.New("fake exec: not created")
	}
	_, err := c.gate.Write([]byte("go\n"))
	c.gate.Close()
	c.gate, c.started = nil, true
	return err
}

// Waiting reports whether the anchor still waits for Exec.
func (c *Container) Waiting(int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.started
}

// Run starts another process, as exec does.
func (c *Container) Run(p *libcontainer.Process) (int, error) {
	if len(p.Args) == 0 {
		return 0, errors.New("fake run: no args")
	}
	path, err := exec.LookPath(p.Args[0])
	if err != nil {
		return 0, err
	}
	pid, err := c.spawn(p, path, p.Args[1:])
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.execs = append(c.execs, pid)
	c.mu.Unlock()
	return pid, nil
}

// Pause stops the anchor with SIGSTOP.
func (c *Container) Pause() error { return c.freeze(true, syscall.SIGSTOP) }

// Resume continues it.
func (c *Container) Resume() error { return c.freeze(false, syscall.SIGCONT) }

func (c *Container) freeze(paused bool, sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = paused
	for _, pid := range c.livePIDs() {
		_ = syscall.Kill(pid, sig)
	}
	return nil
}

// Destroy refuses a running container, kills a created one, and removes
// the state directory.
func (c *Container) Destroy() error {
	if err := c.rt.fail(StepDestroy, c.id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.livePIDs()
	if c.started && len(live) > 0 {
		return errors.New("fake destroy: container is running")
	}
	for _, pid := range live {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if c.gate != nil {
		c.gate.Close()
		c.gate = nil
	}
	c.rt.mu.Lock()
	delete(c.rt.containers, c.dir)
	c.rt.mu.Unlock()
	return os.RemoveAll(c.dir)
}

// Processes lists the anchor and the exec'd processes still alive.
func (c *Container) Processes() ([]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.livePIDs(), nil
}

// livePIDs is the container's processes that have not exited.
func (c *Container) livePIDs() []int {
	var live []int
	for _, pid := range append([]int{c.pid}, c.execs...) {
		if pid <= 0 {
			continue
		}
		if st, err := procfs.ReadStat(procfs.Root, pid); err == nil && !st.Exited() && (pid != c.pid || st.StartTime == c.start) {
			live = append(live, pid)
		}
	}
	return live
}

// Status is libcontainer's status of the container.
func (c *Container) Status() (libcontainer.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !slices.Contains(c.livePIDs(), c.pid):
		return libcontainer.Stopped, nil
	case c.paused:
		return libcontainer.Paused, nil
	case c.started:
		return libcontainer.Running, nil
	default:
		return libcontainer.Created, nil
	}
}

// State reports the anchor and the memory directory.
func (c *Container) State() (*libcontainer.State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &libcontainer.State{
		BaseState: libcontainer.BaseState{
			ID: c.id, InitProcessPid: c.pid, InitProcessStartTime: c.start,
			Created: c.created, Config: c.cfg,
		},
		CgroupPaths: map[string]string{"memory": c.MemoryDir()},
	}, nil
}

// Stats reports empty cgroup statistics.
func (c *Container) Stats() (*libcontainer.Stats, error) {
	return &libcontainer.Stats{CgroupStats: &cgroups.Stats{}}, nil
}

// NotifyOOM is not supported: OOM kills are counted from MemoryDir.
func (c *Container) NotifyOOM() (<-chan struct{}, error) {
	return nil, errors.New("fake: no OOM notification")
}

// Config is the configuration the container was made with (or Set).
func (c *Container) Config() configs.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Set replaces the configuration.
func (c *Container) Set(cfg configs.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg = cfg
	return nil
}
