package rootfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Files of a root volume and of a loader bundle.
const (
	RootfsDir       = "rootfs"            // the volume's root filesystem
	SpecFile        = "config.json"       // a runtime spec, used as it is
	ImageConfigFile = "image-config.json" // an OCI image config
)

// LoaderVolumeMount is where a loader task sees the root volume it loads.
const LoaderVolumeMount = "/mnt"

// ErrNoSeed means no seed was given or found.
var ErrNoSeed = errors.New("no seed")

// Source says where a task's spec comes from.
type Source struct {
	// Volume is the root volume, or "" for none.
	Volume string
	// HostRoot gives a task without a root volume the host's root,
	// read-only.
	HostRoot bool
	// Loader is a loader bundle (a directory with config.json and its
	// root); its spec is the template, and a root Volume, if any, is
	// mounted read-only at LoaderVolumeMount in it.
	Loader string
	// Template gives what an image config and the host root leave unsaid
	// (namespaces, mounts, capabilities, resources).
	Template *specs.Spec
	// App, when set, wins over the seed.
	App *App
}

// Build makes a task's spec from its sources: the seed of the root
// volume's kind, then the app's settings. Relative paths become absolute.
func Build(src Source) (*specs.Spec, error) {
	s, err := seed(src)
	if err != nil {
		return nil, err
	}
	if src.App != nil {
		if s, err = ApplyApp(s, src.App); err != nil {
			return nil, err
		}
	}
	if s.Process == nil || len(s.Process.Args) == 0 {
		return nil, fmt.Errorf("build spec: %w: args: neither the seed nor the app names a program", ErrInvalidApp)
	}
	if s.Root != nil {
		if err := CheckMounts(s.Root.Path, s.Mounts); err != nil {
			return nil, fmt.Errorf("build spec: %w", err)
		}
	}
	return s, nil
}

// seed picks the seed of the root volume's kind.
func seed(src Source) (*specs.Spec, error) {
	switch {
	case src.HostRoot && (src.Volume != "" || src.Loader != ""):
		return nil, fmt.Errorf("seed: the host root excludes a root volume and a loader: %w", ErrInvalidApp)
	case src.Loader != "":
		return LoaderSeed(src.Loader, src.Volume)
	case src.Volume != "":
		return VolumeSeed(src.Volume, src.Template)
	case src.HostRoot:
		return HostRootSeed(src.Template)
	default:
		return nil, fmt.Errorf("seed: give a root volume, a loader or the host root: %w", ErrNoSeed)
	}
}

// VolumeSeed reads the seed of a root volume: its config.json, else its
// image-config.json laid over template.
func VolumeSeed(volume string, template *specs.Spec) (*specs.Spec, error) {
	volume, err := filepath.Abs(volume)
	if err != nil {
		return nil, fmt.Errorf("seed from volume: %w", err)
	}
	s, err := readSpec(filepath.Join(volume, SpecFile))
	if err == nil {
		absRoot(s, volume)
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seed from volume %s: %w", volume, err)
	}
	f, err := os.Open(filepath.Join(volume, ImageConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seed from volume %s: neither %s nor %s: %w", volume, SpecFile, ImageConfigFile, ErrNoSeed)
	}
	if err != nil {
		return nil, fmt.Errorf("seed from volume %s: %w", volume, err)
	}
	defer f.Close()
	img, err := ParseImageConfig(f)
	if err != nil {
		return nil, fmt.Errorf("seed from volume %s: %w", volume, err)
	}
	root := filepath.Join(volume, RootfsDir)
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("seed from volume %s: %s is not a directory", volume, root)
	}
	passwd, closePasswd := openInRoot(root, "/etc/passwd")
	defer closePasswd()
	group, closeGroup := openInRoot(root, "/etc/group")
	defer closeGroup()
	s, err = FromImageConfig(template, img, root, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("seed from volume %s: %w", volume, err)
	}
	return s, nil
}

// openInRoot opens a file of a root filesystem, resolving symlinks as the
// task would see them; nil when there is no such file.
func openInRoot(root, name string) (io.Reader, func()) {
	p, err := securejoin.SecureJoin(root, name)
	if err != nil {
		return nil, func() {}
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, func() {}
	}
	return f, func() { f.Close() }
}

// LoaderSeed reads a loader bundle's spec; a root volume, if given, is
// mounted read-only at LoaderVolumeMount.
func LoaderSeed(loader, volume string) (*specs.Spec, error) {
	loader, err := filepath.Abs(loader)
	if err != nil {
		return nil, fmt.Errorf("seed from loader: %w", err)
	}
	s, err := readSpec(filepath.Join(loader, SpecFile))
	if err != nil {
		return nil, fmt.Errorf("seed from loader %s: %w", loader, err)
	}
	absRoot(s, loader)
	if volume != "" {
		if volume, err = filepath.Abs(volume); err != nil {
			return nil, fmt.Errorf("seed from loader: volume: %w", err)
		}
		s.Mounts = append(s.Mounts, VolumeMounts([]Volume{{Source: volume, Destination: LoaderVolumeMount, ReadOnly: true}})...)
	}
	return s, nil
}

// HostRootSeed is template with the host's root, read-only, as the root.
func HostRootSeed(template *specs.Spec) (*specs.Spec, error) {
	s, err := clone(template)
	if err != nil {
		return nil, err
	}
	s.Root = &specs.Root{Path: "/", Readonly: true}
	return s, nil
}

func absRoot(s *specs.Spec, dir string) {
	if s.Root != nil && s.Root.Path != "" && !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(dir, s.Root.Path)
	}
}

// readSpec reads a runtime spec file.
func readSpec(path string) (*specs.Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseSpec(f)
}

// ParseSpec reads a runtime spec.
func ParseSpec(r io.Reader) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	return &s, nil
}
