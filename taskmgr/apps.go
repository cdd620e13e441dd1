package taskmgr

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/rootfs"
	"github.com/lf-edge/moor/supervisor"
	"github.com/lf-edge/moor/vmbundle"
)

// AppFile is the app's own settings in its directory (see rootfs.App).
const AppFile = "APP.json"

// VMFile, when an app's directory has it, describes the app as EVE's
// controller describes a VM (devicemodel.VM). This example takes mode
// nohyper, which EVE runs as a plain container task: the VM's memory and
// vCPUs become the task's limits (vmbundle.ContainerSpec). Other modes
// need a device model under a loader (moor vm spec) and are refused.
const VMFile = "VM.json"

// App is one app as its directory describes it.
type App struct {
	Name string // the directory's name: the task's ID
	// Dir is the app's directory: its root volume (rootfs/ and
	// config.json or image-config.json) and APP.json.
	Dir string
	// Spec is the seed with APP.json over it, in the cgroup
	// <cgroup parent>/<name>.
	Spec *specs.Spec
	// StopTimeout is the grace between the stop signal and SIGKILL: the
	// annotation moor.stop-timeout (APP.json may set it), 10s without.
	StopTimeout time.Duration
}

// ReadApps reads every app of dir: each subdirectory not starting with a
// dot is one. An app whose description is wrong is left out of apps and
// reported in bad with its error; err is for a dir that cannot be read.
func ReadApps(dir, cgroupParent string) (apps map[string]*App, bad map[string]error, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read apps: %w", err)
	}
	apps, bad = map[string]*App{}, map[string]error{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		a, err := ReadApp(filepath.Join(dir, e.Name()), cgroupParent)
		if err != nil {
			bad[e.Name()] = err
			continue
		}
		apps[a.Name] = a
	}
	return apps, bad, nil
}

// ReadApp builds the app of one directory as `moor spec --seed DIR
// --override DIR/APP.json` would (APP.json may be absent: the seed alone),
// puts it in the cgroup <cgroupParent>/<name> and holds it to the minimum
// viable spec.
func ReadApp(dir, cgroupParent string) (*App, error) {
	name := filepath.Base(dir)
	if err := lifecycle.CheckID(name); err != nil {
		return nil, fmt.Errorf("read app %s: %w", name, err)
	}
	src := rootfs.Source{Volume: dir, Template: rootfs.DefaultSpec()}
	f, err := os.Open(filepath.Join(dir, AppFile))
	switch {
	case err == nil:
		src.App, err = rootfs.ParseApp(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read app %s: %s: %w", name, AppFile, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read app %s: %w", name, err)
	}
	spec, err := rootfs.Build(src)
	if err != nil {
		return nil, fmt.Errorf("read app %s: %w", name, err)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	spec.Linux.CgroupsPath = path.Join(cgroupParent, name)
	if err := asVM(dir, spec); err != nil {
		return nil, fmt.Errorf("read app %s: %w", name, err)
	}
	if err := lifecycle.RequireMinimumSpec(spec); err != nil {
		return nil, fmt.Errorf("read app %s: %w", name, err)
	}
	grace, err := supervisor.ParseStopTimeout(spec.Annotations[supervisor.StopTimeoutAnnotation])
	if err != nil {
		return nil, fmt.Errorf("read app %s: %w", name, err)
	}
	return &App{Name: name, Dir: dir, Spec: spec, StopTimeout: grace}, nil
}

// asVM makes spec the container task of the app's VM description, when
// its directory has one (VMFile).
func asVM(dir string, spec *specs.Spec) error {
	f, err := os.Open(filepath.Join(dir, VMFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	vm, err := devicemodel.Parse(f, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", VMFile, err)
	}
	if vm.Mode != devicemodel.ModeNoHyper {
		return fmt.Errorf("%s: mode %s: this task manager runs only nohyper VM descriptions (a VM needs a device model: moor vm spec)", VMFile, vm.Mode)
	}
	if err := vm.CheckSizes(); err != nil {
		return fmt.Errorf("%s: %w", VMFile, err)
	}
	vmbundle.ContainerSpec(spec, dir, vm, spec.Linux.CgroupsPath)
	return nil
}
