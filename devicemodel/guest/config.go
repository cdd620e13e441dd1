package guest

// ConfigFile is the guest init's configuration in the initramfs.
const ConfigFile = "/etc/moor/app.json"

// AppRoot is where the app's root is mounted in the guest, and what the
// exec stage chroots into.
const AppRoot = "/app"

// ExecStage is argv[0] of the guest init re-executed as the exec stage.
const ExecStage = "moor-guest:exec"

// ExitSetup is the app's exit status when the guest init could not get
// as far as running it (a mount, the user, the rlimits).
const ExitSetup = 125

// Config is what the guest init applies, written by moor vm spec.
type Config struct {
	// Modules are the kernel modules to load, initramfs paths in load
	// order.
	Modules []string `json:"modules,omitempty"`
	// Hostname is the guest's host name; empty leaves the kernel's.
	Hostname string `json:"hostname,omitempty"`
	// Root is the app's root: a 9p share mounted at AppRoot.
	Root Mount `json:"root"`
	// RootOverlay makes the root share the read-only lower layer of an
	// overlay at AppRoot whose upper layer is a tmpfs of the guest's: the
	// app may write its root, and its writes vanish with the guest.
	RootOverlay bool `json:"rootOverlay,omitempty"`
	// Mounts are made in order below AppRoot.
	Mounts  []Mount `json:"mounts,omitempty"`
	Process Process `json:"process"`
}

// ReadOnlyRoot says the root share is mounted read-only: the guest never
// writes it, and overlays it with a tmpfs to make a mount point it lacks.
func (c *Config) ReadOnlyRoot() bool {
	for _, o := range c.Root.Options {
		if o == "ro" {
			return true
		}
	}
	return false
}

// MayOverlay says the guest may need the overlay file system: the app
// writes its root, or the root is read-only and may lack a mount point.
func (c *Config) MayOverlay() bool {
	return c.RootOverlay || c.ReadOnlyRoot()
}

// MountType9p is the type of a Mount of a 9p share, whose Source is the
// share's mount tag.
const MountType9p = "9p"

// MountTypeBind is the type of a Mount of a directory of the guest's own
// (its /dev), bound recursively.
const MountTypeBind = "bind"

// Mount is one mount of the app's: a 9p share, a bind of the guest's own
// directory, or a kernel file system (proc, sysfs, tmpfs, devpts, mqueue,
// cgroup2).
type Mount struct {
	Destination string `json:"destination"`
	Type        string `json:"type"`
	Source      string `json:"source"`
	// Options are mount(8)'s: the flags ro, nosuid, nodev, noexec,
	// relatime, strictatime, noatime; the rest is passed as data.
	Options []string `json:"options,omitempty"`
}

// Process is the app's process.
type Process struct {
	Args           []string `json:"args"`
	Env            []string `json:"env,omitempty"`
	Cwd            string   `json:"cwd,omitempty"`
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
	// Umask is set when not nil.
	Umask           *uint32  `json:"umask,omitempty"`
	Rlimits         []Rlimit `json:"rlimits,omitempty"`
	NoNewPrivileges bool     `json:"noNewPrivileges,omitempty"`
}

// Rlimit is one resource limit, by its OCI name ("RLIMIT_NOFILE").
type Rlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}
