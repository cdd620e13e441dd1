package lifecycle

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// IO is where a task's process reads and writes. With a terminal, the
// console's master end is sent over ConsoleSocket instead.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	ConsoleSocket  *os.File
}

// rlimits maps the spec's names to the kernel's resources.
var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// newProcess turns the spec's process into libcontainer's.
func newProcess(p *specs.Process, stdio IO, init bool) (*libcontainer.Process, error) {
	if p.Terminal && stdio.ConsoleSocket == nil {
		return nil, fmt.Errorf("%w: process.terminal: a terminal needs a console socket", ErrInvalidSpec)
	}
	if !p.Terminal && stdio.ConsoleSocket != nil {
		return nil, fmt.Errorf("%w: process.terminal: a console socket was given but the process has no terminal", ErrInvalidSpec)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	lp := &libcontainer.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             cwd,
		Label:           p.SelinuxLabel,
		NoNewPrivileges: &p.NoNewPrivileges,
		AppArmorProfile: p.ApparmorProfile,
		Scheduler:       p.Scheduler,
		IOPriority:      p.IOPriority,
		Init:            init,
		// The init logs at libcontainer's level: at debug (moor --debug),
		// nsexec's and the init's steps come through.
		LogLevel: strconv.Itoa(int(logrus.GetLevel())),
	}
	if p.Terminal {
		lp.ConsoleSocket = stdio.ConsoleSocket
		if p.ConsoleSize != nil {
			lp.ConsoleWidth, lp.ConsoleHeight = uint16(p.ConsoleSize.Width), uint16(p.ConsoleSize.Height)
		}
	} else {
		lp.Stdin, lp.Stdout, lp.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	}
	if c := p.Capabilities; c != nil {
		lp.Capabilities = &configs.Capabilities{
			Bounding: c.Bounding, Effective: c.Effective, Inheritable: c.Inheritable,
			Permitted: c.Permitted, Ambient: c.Ambient,
		}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, rl := range p.Rlimits {
		t, ok := rlimits[rl.Type]
		if !ok {
			return nil, fmt.Errorf("%w: process.rlimits: unknown type %q", ErrInvalidSpec, rl.Type)
		}
		lp.Rlimits = append(lp.Rlimits, configs.Rlimit{Type: t, Hard: rl.Hard, Soft: rl.Soft})
	}
	aff, err := configs.ConvertCPUAffinity(p.ExecCPUAffinity)
	if err != nil {
		return nil, fmt.Errorf("%w: process.execCPUAffinity: %v", ErrInvalidSpec, err)
	}
	lp.CPUAffinity = aff
	return lp, nil
}

// absolutize makes the spec's bundle-relative paths (root, bind mount
// sources) absolute, so no chdir into the bundle is needed. It returns a
// copy; the caller's spec is left as it was.
func absolutize(s *specs.Spec, bundle string) *specs.Spec {
	c := *s
	root := *s.Root
	if !filepath.IsAbs(root.Path) {
		root.Path = filepath.Join(bundle, root.Path)
	}
	c.Root = &root
	c.Mounts = slices.Clone(s.Mounts)
	for i, m := range c.Mounts {
		isBind := m.Type == "bind" || slices.ContainsFunc(m.Options, func(o string) bool { return o == "bind" || o == "rbind" })
		if isBind && m.Source != "" && !filepath.IsAbs(m.Source) {
			c.Mounts[i].Source = filepath.Join(bundle, m.Source)
		}
	}
	linux := *s.Linux
	c.Linux = &linux
	return &c
}

// setBundleLabel points libcontainer's bundle label (what hooks see in the
// setLabels leaves libcontainer's state the bundle, and the spec's
// annotations only when a hook libcontainer runs may read them: the spec is
// stored once (moor's copy), not again in state.json.
func setLabels(cfg *configs.Config, bundle string) {
	keep := len(cfg.Hooks[configs.Prestart])+len(cfg.Hooks[configs.CreateRuntime])+
		len(cfg.Hooks[configs.CreateContainer])+len(cfg.Hooks[configs.StartContainer]) > 0
	cfg.Labels = slices.DeleteFunc(cfg.Labels, func(l string) bool {
		return strings.HasPrefix(l, "bundle=") || !keep
	})
	cfg.Labels = append(cfg.Labels, "bundle="+bundle)
}

// ownAnnotations are the annotations moor itself reads (moor.*, the stop
// signal): all the record keeps, so that list reads no spec.
func ownAnnotations(all map[string]string) map[string]string {
	var own map[string]string
	for k, v := range all {
		if strings.HasPrefix(k, "moor.") || strings.HasPrefix(k, "org.lfedge.moor.") || k == StopSignalAnnotation {
			if own == nil {
				own = map[string]string{}
			}
			own[k] = v
		}
	}
	return own
}
