package qemu

import (
	"flag"
	"strings"
	"testing"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

type fixedProbe bool

func (p fixedProbe) KVM() bool { return bool(p) }

// descriptions are the VMs the golden files show.
var descriptions = map[string]string{
	"kvm":     `{"name":"demo","memoryMiB":128,"vcpus":1}`,
	"tcg":     `{"name":"tiny","uuid":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","hypervisor":"tcg","memoryMiB":256,"vcpus":2,"kernel":"/boot/vmlinuz","initrd":"/boot/initrd","cmdline":"console=ttyS0 quiet"}`,
	"pinning": `{"name":"pinned","memoryMiB":1024,"vcpus":2,"cpus":"2-3"}`,
	"disks":   `{"name":"disks","memoryMiB":512,"disks":[{"path":"/vol/root.qcow2","format":"qcow2"},{"path":"/vol/data.img","readonly":true}]}`,
	"nics":    `{"name":"net","memoryMiB":512,"nics":[{"tap":"nbu1x1","mac":"02:16:3e:00:00:01","bridge":"bn1"},{"tap":"nbu1x2"}]}`,
	"fml":     `{"name":"win","mode":"fml","memoryMiB":4096,"vcpus":4,"firmware":"/usr/lib/xen/boot/OVMF_CODE.fd"}`,
	// fml with the VM's own variable store, as in the task's vm.json.
	"fml-vars": `{"name":"win","mode":"fml","memoryMiB":4096,"vcpus":4,"firmware":"/usr/lib/xen/boot/OVMF_CODE.fd",
		"firmwareVars":"/run/moor/vm/OVMF_VARS.fd"}`,
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, name, got, *update)
}

func TestGolden(t *testing.T) {
	p := PathsIn("/run/moor/vm")
	for name, desc := range descriptions {
		t.Run(name, func(t *testing.T) {
			vm, err := devicemodel.Parse(strings.NewReader(desc), fixedProbe(true))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name+".argv", []byte(strings.Join(Argv(vm, Binary, p), "\n")+"\n"))
			checkGolden(t, name+".cfg", ReadConfig(vm, p))
		})
	}
}

func TestGuestState(t *testing.T) {
	for in, want := range map[string]devicemodel.GuestState{
		"running": devicemodel.GuestRunning, "prelaunch": devicemodel.GuestPaused,
		"paused": devicemodel.GuestPaused, "shutdown": devicemodel.GuestShutdown,
		"internal-error": devicemodel.GuestCrashed, "guest-panicked": devicemodel.GuestCrashed,
	} {
		if got := GuestState(in); got != want {
			t.Errorf("GuestState(%q) = %s, want %s", in, got, want)
		}
	}
}
