package containerd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// criPlugin is the CRI plugin's ID.
const criPlugin = "io.containerd.grpc.v1.cri"

// Options describe a private containerd.
type Options struct {
	// Dir holds everything of the daemon (see Layout). It must be
	// absolute and short enough for a unix socket path under it.
	Dir string
	// CRI, when set, enables the CRI plugin; nil disables it.
	CRI *CRI
}

// CRI configures the CRI plugin.
type CRI struct {
	// SandboxImage is the pause image of every pod sandbox; it must be
	// in the k8s.io namespace already (nothing is pulled).
	SandboxImage string
	// Runtimes are the runtime handlers, each an entry
	// containerd.runtimes.<Name> of type io.containerd.runc.v2.
	Runtimes []Runtime
	// DefaultRuntime names the handler of pods that ask for none; it must
	// be one of Runtimes. Empty means the first.
	DefaultRuntime string
}

// Runtime is one runtime handler of the CRI plugin.
type Runtime struct {
	Name string
	// BinaryName is the absolute path of the OCI runtime CLI the shim
	// calls (options.BinaryName).
	BinaryName string
	// Root is the runtime's state root (options.Root, given as --root with
	// the namespace appended); empty means Layout.RuntimeRoot(Name).
	Root string
}

// Layout names the files and directories of a private containerd.
type Layout string

func (l Layout) ConfigFile() string  { return filepath.Join(string(l), "config.toml") }
func (l Layout) Root() string        { return filepath.Join(string(l), "root") }
func (l Layout) State() string       { return filepath.Join(string(l), "state") }
func (l Layout) Temp() string        { return filepath.Join(string(l), "tmp") }
func (l Layout) Socket() string      { return filepath.Join(string(l), "ctd.sock") }
func (l Layout) TTRPCSocket() string { return filepath.Join(string(l), "ctd.sock.ttrpc") }
func (l Layout) LogFile() string     { return filepath.Join(string(l), "containerd.log") }
func (l Layout) CNIDir() string      { return filepath.Join(string(l), "cni") }

// RuntimeRoot is a state root for the OCI runtime name under the
// directory: what `ctr run --runc-root` or a handler's options.Root
// should name, so that the runtime's state stays in the directory too.
func (l Layout) RuntimeRoot(name string) string {
	return filepath.Join(string(l), "runtime-root", name)
}

// TaskDir is the bundle directory the shim of a task uses.
func (l Layout) TaskDir(namespace, id string) string {
	return filepath.Join(l.State(), "io.containerd.runtime.v2.task", namespace, id)
}

// maxSocketPath is the room for a unix socket path (sun_path less the NUL).
const maxSocketPath = 107

// ErrOptions reports options Config cannot render.
var ErrOptions = errors.New("invalid containerd options")

// disabled are plugins a private daemon never needs: snapshotters that
// cannot work here or would only slow its start down.
var disabled = []string{
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
}

// Config renders the daemon's config.toml.
func Config(o Options) ([]byte, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	l := Layout(o.Dir)
	var b strings.Builder
	off := disabled
	if o.CRI == nil {
		off = append([]string{criPlugin}, disabled...)
	}
	fmt.Fprintf(&b, "version = 2\nroot = %s\nstate = %s\ntemp = %s\n", q(l.Root()), q(l.State()), q(l.Temp()))
	fmt.Fprintf(&b, "disabled_plugins = [%s]\n", qlist(off))
	fmt.Fprintf(&b, "\n[grpc]\n  address = %s\n  tcp_address = \"\"\n", q(l.Socket()))
	fmt.Fprintf(&b, "\n[ttrpc]\n  address = %s\n", q(l.TTRPCSocket()))
	b.WriteString("\n[debug]\n  address = \"\"\n\n[metrics]\n  address = \"\"\n")
	fmt.Fprintf(&b, "\n[plugins]\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = %s\n", q(filepath.Join(l.Root(), "opt")))
	if o.CRI != nil {
		writeCRI(&b, l, o.CRI)
	}
	return []byte(b.String()), nil
}

// writeCRI renders the CRI plugin's section.
func writeCRI(b *strings.Builder, l Layout, c *CRI) {
	def := c.DefaultRuntime
	if def == "" {
		def = c.Runtimes[0].Name
	}
	p := "plugins." + q(criPlugin)
	fmt.Fprintf(b, "\n  [%s]\n", p)
	fmt.Fprintf(b, "    sandbox_image = %s\n", q(c.SandboxImage))
	// The sandbox's oom_score_adj of -998 needs CAP_SYS_RESOURCE, which
	// a VM's bounding set may lack: keep the daemon's own instead.
	b.WriteString("    restrict_oom_score_adj = true\n")
	b.WriteString("    disable_tcp_service = true\n")
	// Exec and attach streams: loopback, a port of the kernel's choice.
	b.WriteString("    stream_server_address = \"127.0.0.1\"\n    stream_server_port = \"0\"\n")
	// No CNI: empty directories of its own, so only host-network pods run.
	fmt.Fprintf(b, "    [%s.cni]\n      bin_dir = %s\n      conf_dir = %s\n", p,
		q(filepath.Join(l.CNIDir(), "bin")), q(filepath.Join(l.CNIDir(), "conf")))
	fmt.Fprintf(b, "    [%s.containerd]\n      snapshotter = \"overlayfs\"\n      default_runtime_name = %s\n", p, q(def))
	for _, rt := range c.Runtimes {
		root := rt.Root
		if root == "" {
			root = l.RuntimeRoot(rt.Name)
		}
		e := p + ".containerd.runtimes." + q(rt.Name)
		fmt.Fprintf(b, "      [%s]\n        runtime_type = \"io.containerd.runc.v2\"\n", e)
		fmt.Fprintf(b, "        [%s.options]\n          BinaryName = %s\n          Root = %s\n", e, q(rt.BinaryName), q(root))
	}
}

// check validates the options.
func (o Options) check() error {
	if !filepath.IsAbs(o.Dir) {
		return fmt.Errorf("%w: dir %q is not absolute", ErrOptions, o.Dir)
	}
	if n := len(Layout(o.Dir).TTRPCSocket()); n > maxSocketPath {
		return fmt.Errorf("%w: dir %q is too long for a unix socket path under it (%d > %d)", ErrOptions, o.Dir, n, maxSocketPath)
	}
	c := o.CRI
	if c == nil {
		return nil
	}
	if c.SandboxImage == "" {
		return fmt.Errorf("%w: CRI: no sandbox image", ErrOptions)
	}
	if len(c.Runtimes) == 0 {
		return fmt.Errorf("%w: CRI: no runtime handler", ErrOptions)
	}
	found := c.DefaultRuntime == ""
	for _, rt := range c.Runtimes {
		if rt.Name == "" || strings.ContainsAny(rt.Name, "\"\\.") {
			return fmt.Errorf("%w: CRI: runtime handler name %q", ErrOptions, rt.Name)
		}
		if !filepath.IsAbs(rt.BinaryName) {
			return fmt.Errorf("%w: CRI: runtime handler %s: BinaryName %q is not absolute", ErrOptions, rt.Name, rt.BinaryName)
		}
		found = found || rt.Name == c.DefaultRuntime
	}
	if !found {
		return fmt.Errorf("%w: CRI: default runtime %q is not a runtime handler", ErrOptions, c.DefaultRuntime)
	}
	return nil
}

// q quotes s as a TOML basic string: Go's quoting is TOML's for the
// printable text of paths and names.
func q(s string) string { return strconv.Quote(s) }

func qlist(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = q(s)
	}
	return strings.Join(out, ", ")
}
