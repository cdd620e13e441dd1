package lifecycle

import (
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"

	"github.com/lf-edge/moor/procfs"
)

// Runtime makes and finds the containers of tasks: the seam between the
// lifecycle and libcontainer. Libcontainer is the real one; package
// lifecycle/fake has one that runs plain host processes, for tests
// without root.
type Runtime interface {
	// Create makes the container's state directory <root>/<id> (an
	// error wrapping libcontainer.ErrExist when it is there) and its
	// cgroup configuration; nothing runs yet.
	Create(root, id string, cfg *configs.Config) (Container, error)
	// Load finds a container Create made, from any process.
	Load(root, id string) (Container, error)
}

// Container is one task's container as the lifecycle drives it; a
// *libcontainer.Container behind a thin adapter.
type Container interface {
	// Start forks the anchor, blocked until Exec, and returns its PID.
	Start(p *libcontainer.Process) (pid int, err error)
	// Exec lets the anchor run the task's process.
	Exec() error
	// Waiting reports whether the anchor pid of a created container
	// still waits for Exec.
	Waiting(pid int) bool
	// Run starts another process in the running container.
	Run(p *libcontainer.Process) (pid int, err error)
	Pause() error
	Resume() error
	// Destroy removes the cgroup and the state directory of a container
	// whose processes are gone (a created one is killed first).
	Destroy() error
	// Processes lists the host PIDs in the container's cgroup.
	Processes() ([]int, error)
	Status() (libcontainer.Status, error)
	State() (*libcontainer.State, error)
	Stats() (*libcontainer.Stats, error)
	NotifyOOM() (<-chan struct{}, error)
	Config() configs.Config
	// Set changes the container's resources.
	Set(configs.Config) error
}

// Libcontainer is the Runtime of runc's libcontainer.
type Libcontainer struct{}

// Create makes a libcontainer container.
func (Libcontainer) Create(root, id string, cfg *configs.Config) (Container, error) {
	c, err := libcontainer.Create(root, id, cfg)
	if err != nil {
		return nil, err
	}
	return lcContainer{c}, nil
}

// Load loads a libcontainer container.
func (Libcontainer) Load(root, id string) (Container, error) {
	c, err := libcontainer.Load(root, id)
	if err != nil {
		return nil, err
	}
	return lcContainer{c}, nil
}

// lcContainer adapts a libcontainer container: its starts return the PID.
type lcContainer struct{ *libcontainer.Container }

func (c lcContainer) Start(p *libcontainer.Process) (int, error) {
	if err := c.Container.Start(p); err != nil {
		return 0, err
	}
	return p.Pid()
}

func (c lcContainer) Run(p *libcontainer.Process) (int, error) {
	if err := c.Container.Run(p); err != nil {
		return 0, err
	}
	return p.Pid()
}

// Waiting reports whether the anchor pid still waits for Exec: it is
// still "<binary> init". A start cut short after the anchor was let go,
// before libcontainer removed its exec fifo, leaves a container whose
// status reads created while its anchor runs the task.
func (c lcContainer) Waiting(pid int) bool {
	args, err := procfs.ReadCmdline(procfs.Root, pid)
	return err != nil || len(args) < 2 || args[1] == "init"
}
