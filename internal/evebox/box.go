package evebox

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/supervisor"
)

// Box is "EVE in a box": the EVE-shaped tree booted with moor as PID 1,
// moor-taskmgr as its pillar service driving three user apps of task
// namespace eve-user-apps (two container apps and a VM description of
// mode nohyper), and a probe service, debug, that checks the machine from
// inside and prints what it finds on the console as "box: …" lines.
type Box struct {
	Dir     string // the containers tree to write (the image's /containers)
	Busybox string // a static busybox root on this host, copied for the tasks
	Taskmgr string // the moor-taskmgr binary on this host
}

// Apps are the box's user apps; AppNoHyper is the one described as a VM.
var Apps = []string{"app1", "app2", "app3"}

// AppNoHyper is the user app whose description is a VM of mode nohyper.
const AppNoHyper = "app3"

// App limits: every app's memory and CPU, as APP.json gives them.
const (
	AppMemoryMiB = 32
	AppCPUs      = 1
)

// In the image.
const (
	imageDir   = "/containers"
	statusFile = "/run/taskmgr/status.json"
	appsParent = "/eve/apps"
)

// Write writes the box's tree: the EVE tree with pillar running
// moor-taskmgr, the apps' directories and the probe.
func (b *Box) Write() error {
	for _, d := range []string{"persist", "sysctl.d", "taskmgr"} {
		if err := os.MkdirAll(filepath.Join(b.Dir, d), 0o755); err != nil {
			return fmt.Errorf("write box: %w", err)
		}
	}
	if err := copyTree(b.Busybox, filepath.Join(b.Dir, "rootfs")); err != nil {
		return err
	}
	if err := copyTree(b.Taskmgr, filepath.Join(b.Dir, "taskmgr", "moor-taskmgr")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "sysctl.d", "00-eve.conf"), []byte("net.ipv4.ip_forward = 1\n"), 0o644); err != nil {
		return fmt.Errorf("write box: %w", err)
	}
	for _, name := range Apps {
		if err := b.writeApp(name); err != nil {
			return err
		}
	}
	t := &Tree{Dir: b.Dir, Root: imageDir + "/rootfs", Persist: imageDir + "/persist", SysctlD: imageDir + "/sysctl.d", Pillar: taskmgrPillar}
	if err := t.Write(); err != nil {
		return err
	}
	return WriteBundle(filepath.Join(b.Dir, "services", "debug"), probeSpec())
}

// taskmgrPillar makes pillar the task manager: moor's state root (in /run),
// the cgroup file system, the image's /containers (the apps' volumes) and
// the binary bound in, with the restart policy always.
func taskmgrPillar(s *specs.Spec) {
	s.Process.Args = []string{"/opt/taskmgr/moor-taskmgr", "--apps", imageDir + "/apps", "--root", "/run/moor",
		"--cgroup-parent", appsParent, "--status", statusFile}
	s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys/fs/cgroup" })
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/run", Type: "bind", Source: "/run", Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/sys/fs/cgroup", Type: "bind", Source: "/sys/fs/cgroup", Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: imageDir, Type: "bind", Source: imageDir, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/opt/taskmgr", Type: "bind", Source: imageDir + "/taskmgr", Options: []string{"rbind", "ro"}})
	s.Annotations = map[string]string{supervisor.RestartAnnotation: "always", supervisor.StopTimeoutAnnotation: "20s"}
}

// writeApp writes one app's directory: a root volume (busybox and an OCI
// image config) and APP.json; the nohyper one also a VM description.
func (b *Box) writeApp(name string) error {
	dir := filepath.Join(b.Dir, "apps", name)
	if err := copyTree(b.Busybox, filepath.Join(dir, "rootfs")); err != nil {
		return err
	}
	script := fmt.Sprintf("trap 'echo %[1]s got TERM; exit 0' TERM; echo %[1]s up; while :; do sleep 0.2; done", name)
	files := map[string]any{
		"image-config.json": map[string]any{"config": map[string]any{"Cmd": []string{"/bin/sh", "-c", script}}},
		"APP.json":          map[string]any{"memoryMiB": AppMemoryMiB, "cpus": AppCPUs},
	}
	if name == AppNoHyper {
		files["VM.json"] = map[string]any{"name": name, "mode": "nohyper", "memoryMiB": AppMemoryMiB, "vcpus": AppCPUs}
	}
	for f, v := range files {
		raw, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("write app %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
			return fmt.Errorf("write app %s: %w", name, err)
		}
	}
	return nil
}

// probeSpec is the debug service: the machine's PID namespace, every
// capability, the machine's root read-only at /hostfs (moor's binary, /init,
// and its state root) and its cgroup file system read-only.
func probeSpec() *specs.Spec {
	s := LinuxkitSpec(imageDir+"/rootfs", "/bin/sh", "-c", probeScript)
	s.Linux.CgroupsPath = "/eve/services/debug"
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: AllCaps, Effective: AllCaps, Permitted: AllCaps}
	s.Linux.Namespaces = Without(s.Linux.Namespaces, specs.PIDNamespace)
	s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys/fs/cgroup" })
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/hostfs", Type: "bind", Source: "/", Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/run", Type: "bind", Source: "/run", Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/sys/fs/cgroup", Type: "bind", Source: "/sys/fs/cgroup", Options: []string{"rbind", "ro"}})
	s.Annotations = map[string]string{supervisor.StopTimeoutAnnotation: "2s"}
	return s
}

// copyTree copies a file or a directory tree, as cp -a does.
func copyTree(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %w: %s", from, err, out)
	}
	return nil
}
