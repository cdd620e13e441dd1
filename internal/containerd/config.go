package containerd

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ConfigVersion is the form of config.toml a containerd reads.
type ConfigVersion int

const (
	// ConfigV2 is containerd 1.x's form: the CRI plugin is one table,
	// io.containerd.grpc.v1.cri.
	ConfigV2 ConfigVersion = 2
	// ConfigV3 is containerd 2.x's: the CRI plugin's image service and
	// runtime are plugins of their own (io.containerd.cri.v1.images,
	// io.containerd.cri.v1.runtime); io.containerd.grpc.v1.cri keeps the
	// server's settings.
	ConfigV3 ConfigVersion = 3
)

// IDs of the CRI plugins.
const (
	criPlugin       = "io.containerd.grpc.v1.cri"
	criImagesPlugin = "io.containerd.cri.v1.images"
	criRuntime      = "io.containerd.cri.v1.runtime"
	podSandboxes    = "io.containerd.podsandbox.controller.v1.podsandbox"
)

// Options describe a private containerd.
type Options struct {
	// Dir holds everything of the daemon (see Layout). It must be
	// absolute and short enough for a unix socket path under it.
	Dir string
	// Bin is the directory of the containerd, containerd-shim-runc-v2
	// and ctr to run; empty means those on PATH.
	Bin string
	// Version is the form of the config, the containerd's: 0 means
	// ConfigV2.
	Version ConfigVersion
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

// disabled are plugins a private daemon never needs, by config version:
// snapshotters that cannot work here or would only slow its start down,
// and containerd 2.x's NRI, whose socket is a fixed path of the host.
var disabled = map[ConfigVersion][]string{
	ConfigV2: {
		"io.containerd.snapshotter.v1.aufs",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.snapshotter.v1.zfs",
	},
	ConfigV3: {
		"io.containerd.snapshotter.v1.blockfile",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.snapshotter.v1.erofs",
		"io.containerd.snapshotter.v1.zfs",
		"io.containerd.nri.v1.nri",
	},
}

// criPlugins are the plugins a daemon without CRI disables.
var criPlugins = map[ConfigVersion][]string{
	ConfigV2: {criPlugin},
	ConfigV3: {criPlugin, criImagesPlugin, criRuntime, podSandboxes},
}

// version is the config's version, ConfigV2 when unset.
func (o Options) version() ConfigVersion {
	if o.Version == 0 {
		return ConfigV2
	}
	return o.Version
}

// Config renders the daemon's config.toml.
func Config(o Options) ([]byte, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	v := o.version()
	l := Layout(o.Dir)
	var b strings.Builder
	off := disabled[v]
	if o.CRI == nil {
		off = append(slices.Clone(criPlugins[v]), off...)
	}
	fmt.Fprintf(&b, "version = %d\nroot = %s\nstate = %s\ntemp = %s\n", v, q(l.Root()), q(l.State()), q(l.Temp()))
	fmt.Fprintf(&b, "disabled_plugins = [%s]\n", qlist(off))
	fmt.Fprintf(&b, "\n[grpc]\n  address = %s\n  tcp_address = \"\"\n", q(l.Socket()))
	fmt.Fprintf(&b, "\n[ttrpc]\n  address = %s\n", q(l.TTRPCSocket()))
	b.WriteString("\n[debug]\n  address = \"\"\n\n[metrics]\n  address = \"\"\n")
	fmt.Fprintf(&b, "\n[plugins]\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = %s\n", q(filepath.Join(l.Root(), "opt")))
	switch {
	case o.CRI == nil:
	case v == ConfigV3:
		writeCRIV3(&b, l, o.CRI)
	default:
		writeCRIV2(&b, l, o.CRI)
	}
	return []byte(b.String()), nil
}

// writeCRIV2 renders the CRI plugin's section in version 2 form.
func writeCRIV2(b *strings.Builder, l Layout, c *CRI) {
	p := "plugins." + q(criPlugin)
	fmt.Fprintf(b, "\n  [%s]\n", p)
	fmt.Fprintf(b, "    sandbox_image = %s\n", q(c.SandboxImage))
	writeOOMScoreAdj(b)
	writeStreamServer(b)
	fmt.Fprintf(b, "    [%s.cni]\n      bin_dir = %s\n      conf_dir = %s\n", p,
		q(filepath.Join(l.CNIDir(), "bin")), q(filepath.Join(l.CNIDir(), "conf")))
	fmt.Fprintf(b, "    [%s.containerd]\n      snapshotter = \"overlayfs\"\n", p)
	writeRuntimes(b, l, p, c)
}

// writeCRIV3 renders the CRI plugins' sections in version 3 form: the
// server's, the image service's (snapshotter, the sandbox image pinned)
// and the runtime's (CNI, handlers).
func writeCRIV3(b *strings.Builder, l Layout, c *CRI) {
	fmt.Fprintf(b, "\n  [plugins.%s]\n", q(criPlugin))
	writeStreamServer(b)
	img := "plugins." + q(criImagesPlugin)
	fmt.Fprintf(b, "\n  [%s]\n    snapshotter = \"overlayfs\"\n", img)
	fmt.Fprintf(b, "    [%s.pinned_images]\n      sandbox = %s\n", img, q(c.SandboxImage))
	p := "plugins." + q(criRuntime)
	fmt.Fprintf(b, "\n  [%s]\n", p)
	writeOOMScoreAdj(b)
	fmt.Fprintf(b, "    [%s.cni]\n      bin_dirs = [%s]\n      conf_dir = %s\n", p,
		q(filepath.Join(l.CNIDir(), "bin")), q(filepath.Join(l.CNIDir(), "conf")))
	fmt.Fprintf(b, "    [%s.containerd]\n", p)
	writeRuntimes(b, l, p, c)
}

// writeOOMScoreAdj keeps the daemon's oom_score_adj for sandboxes: their
// -998 needs CAP_SYS_RESOURCE, which a VM's bounding set may lack.
func writeOOMScoreAdj(b *strings.Builder) {
	b.WriteString("    restrict_oom_score_adj = true\n")
}

// writeStreamServer puts the exec and attach streams on loopback, a port
// of the kernel's choice, and CRI on no TCP port.
func writeStreamServer(b *strings.Builder) {
	b.WriteString("    disable_tcp_service = true\n")
	b.WriteString("    stream_server_address = \"127.0.0.1\"\n    stream_server_port = \"0\"\n")
}

// writeRuntimes renders the default handler and the handlers, in the
// table p.containerd the caller has opened. No CNI: the CNI directories
// are empty ones of the daemon's own, so only host-network pods run.
func writeRuntimes(b *strings.Builder, l Layout, p string, c *CRI) {
	def := c.DefaultRuntime
	if def == "" {
		def = c.Runtimes[0].Name
	}
	fmt.Fprintf(b, "      default_runtime_name = %s\n", q(def))
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
	if v := o.version(); v != ConfigV2 && v != ConfigV3 {
		return fmt.Errorf("%w: config version %d", ErrOptions, v)
	}
	if o.Bin != "" && !filepath.IsAbs(o.Bin) {
		return fmt.Errorf("%w: bin %q is not absolute", ErrOptions, o.Bin)
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
