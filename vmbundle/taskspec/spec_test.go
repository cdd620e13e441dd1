package taskspec

import (
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestBuildGolden(t *testing.T) {
	loader := &specs.Spec{
		Root: &specs.Root{Path: "/containers/services/xen-tools/rootfs"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/run", Type: "bind", Source: "/run", Options: []string{"rbind", "rw"}},
			{Destination: "/hostfs", Type: "bind", Source: "/", Options: []string{"rbind", "ro"}},
		},
	}
	// The host-root case has no lean anchor: moor itself is the anchor.
	for name, c := range map[string]struct {
		desc   string
		loader *specs.Spec
		anchor string
	}{
		"spec-host-root": {`{"name":"demo","memoryMiB":128,"vcpus":1}`, nil, ""},
		"spec-loader-kvm": {`{"name":"vm1","hypervisor":"kvm","memoryMiB":1024,"vcpus":2,"cpus":"2-3","kernel":"/vol/k","initrd":"/vol/i","cmdline":"quiet",
			"disks":[{"path":"/vol/root.img"},{"path":"/vol/ro.img","readonly":true}],"nics":[{"tap":"nbu1x1","bridge":"bn1"}]}`, loader, "/usr/bin/moor-anchor"},
		"spec-loader-xen": {`{"name":"xen1","hypervisor":"xen","memoryMiB":512,"vmmMaxMemMiB":64}`, loader, "/usr/bin/moor-anchor"},
		"spec-host-root-fml-vars": {`{"name":"demo","memoryMiB":128,"vcpus":1,"mode":"fml",
			"firmware":"/usr/share/OVMF/OVMF_CODE.fd","firmwareVars":"/usr/share/OVMF/OVMF_VARS.fd"}`, nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			vm, err := devicemodel.Parse(strings.NewReader(c.desc), nil)
			if err != nil {
				t.Fatal(err)
			}
			s, inTask, err := Build(vm, Options{Loader: c.loader, Moor: "/usr/bin/moor", Anchor: c.anchor, RunDir: "/bundle/vm", XL: "/usr/sbin/xl"})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.MarshalIndent(struct {
				Spec *specs.Spec     `json:"spec"`
				VM   *devicemodel.VM `json:"vm"`
			}{s, inTask}, "", "  ")
			golden.Check(t, name+".json", append(b, '\n'), *update)
		})
	}
}

func TestBuildRejectsNoHyper(t *testing.T) {
	vm := &devicemodel.VM{Name: "c", Mode: devicemodel.ModeNoHyper, MemoryMiB: 64, VCPUs: 1}
	if _, _, err := Build(vm, Options{Moor: "/moor", RunDir: "/b/vm"}); !errors.Is(err, devicemodel.ErrInvalidVM) {
		t.Errorf("Build(nohyper) = %v, want ErrInvalidVM", err)
	}
}

func TestBuildRejectsRelativePaths(t *testing.T) {
	vm := &devicemodel.VM{Name: "c", Hypervisor: devicemodel.TCG, MemoryMiB: 64, VCPUs: 1}
	for _, o := range []Options{
		{RunDir: "/b/vm"},
		{Moor: "moor", RunDir: "/b/vm"},
		{Moor: "/moor", RunDir: "/b/vm", Anchor: "moor-anchor"},
		{Moor: "/moor", RunDir: "vm"},
	} {
		if _, _, err := Build(vm, o); err == nil {
			t.Errorf("Build(%+v) accepted a missing or relative path", o)
		}
	}
}

// TestBuildFirmwareVars: the task's VM names the copy in the run
// directory; the template stays on the host, bound nowhere.
func TestBuildFirmwareVars(t *testing.T) {
	vm := &devicemodel.VM{Name: "u", Mode: devicemodel.ModeFML, Hypervisor: devicemodel.TCG, MemoryMiB: 64, VCPUs: 1,
		Firmware: "/fw/OVMF_CODE.fd", FirmwareVars: "/fw/OVMF_VARS.fd"}
	s, inTask, err := Build(vm, Options{Moor: "/moor", RunDir: "/b/vm"})
	if err != nil {
		t.Fatal(err)
	}
	if want := devicemodel.TaskRunDir + "/" + devicemodel.VarsFile; inTask.FirmwareVars != want {
		t.Errorf("in-task firmwareVars %q, want %q", inTask.FirmwareVars, want)
	}
	if vm.FirmwareVars != "/fw/OVMF_VARS.fd" {
		t.Errorf("Build changed the description's firmwareVars to %q", vm.FirmwareVars)
	}
	for _, m := range s.Mounts {
		if m.Source == vm.FirmwareVars {
			t.Errorf("the template is mounted into the task: %+v", m)
		}
	}
}

// TestBuildAppGolden: a container app's task, from an app spec like moor
// spec --seed writes, with a relative root, a writable and a read-only
// volume.
func TestBuildAppGolden(t *testing.T) {
	umask := uint32(0o022)
	app := &specs.Spec{
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "app1",
		Process: &specs.Process{
			Args: []string{"/bin/sh", "-c", "echo hi"}, Env: []string{"PATH=/bin"}, Cwd: "/work",
			User:    specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}, Umask: &umask},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 512}},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "newinstance"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "ro", "memory"}},
			{Destination: "/data", Type: "bind", Source: "/persist/app-data", Options: []string{"rbind", "rw", "nosuid", "nodev"}},
			{Destination: "/etc/app", Source: "conf", Options: []string{"rbind", "ro"}},
		},
	}
	a, err := PlanApp(app, "/apps/app1")
	if err != nil {
		t.Fatal(err)
	}
	a.Initramfs = "/bundle/vm/initramfs-0123456789abcdef.cpio.gz"
	vm, err := devicemodel.Parse(strings.NewReader(`{"name":"app1","hypervisor":"tcg","memoryMiB":128,"kernel":"/boot/vmlinuz"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, inTask, err := Build(vm, Options{Moor: "/usr/bin/moor", Anchor: "/usr/bin/moor-anchor", RunDir: "/bundle/vm", App: a})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(struct {
		Spec  *specs.Spec     `json:"spec"`
		VM    *devicemodel.VM `json:"vm"`
		Guest any             `json:"guest"`
	}{s, inTask, a.Guest}, "", "  ")
	golden.Check(t, "spec-app.json", append(b, '\n'), *update)
}

// TestPlanAppWritableRoot: rootWritable shares the root read-only and
// has the guest overlay it.
func TestPlanAppWritableRoot(t *testing.T) {
	s := &specs.Spec{Root: &specs.Root{Path: "/r", Readonly: true}, Process: &specs.Process{Args: []string{"/bin/true"}},
		Annotations: map[string]string{"moor.root.writable": "true"}}
	a, err := PlanApp(s, "/b")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Guest.RootOverlay || !a.Shares[0].ReadOnly || strings.Join(a.Guest.Root.Options, ",") != "ro" {
		t.Errorf("plan %+v, guest root %+v: want a read-only share overlaid in the guest", a.Shares, a.Guest)
	}
}

func TestPlanAppRejects(t *testing.T) {
	base := func() *specs.Spec {
		return &specs.Spec{Root: &specs.Root{Path: "/r"}, Process: &specs.Process{Args: []string{"/bin/true"}}}
	}
	for name, mutate := range map[string]func(*specs.Spec){
		"no root":  func(s *specs.Spec) { s.Root = nil },
		"no args":  func(s *specs.Spec) { s.Process.Args = nil },
		"overlay":  func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/x", Type: "overlay", Source: "overlay"}} },
		"relative": func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "x", Type: "bind", Source: "/x"}} },
	} {
		s := base()
		mutate(s)
		if _, err := PlanApp(s, "/b"); err == nil {
			t.Errorf("%s: PlanApp accepted it", name)
		}
	}
	vm := &devicemodel.VM{Name: "a", Mode: devicemodel.ModeHVM, Hypervisor: devicemodel.TCG, Arch: devicemodel.HostArch(), MemoryMiB: 64, VCPUs: 1, Kernel: "/k", Initrd: "/i"}
	a, err := PlanApp(base(), "/b")
	if err != nil {
		t.Fatal(err)
	}
	a.Initramfs = "/b/vm/initramfs.gz"
	if _, _, err := Build(vm, Options{Moor: "/moor", RunDir: "/b/vm", App: a}); !errors.Is(err, devicemodel.ErrInvalidVM) || !strings.Contains(err.Error(), "initrd") {
		t.Errorf("an app VM with an initrd: %v, want an error naming initrd", err)
	}
}
