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
	// A container app, as moor vm spec --app writes its vm.json: the
	// initramfs of moor's guest init, the app's root and a volume shared
	// over 9p, the control and output ports.
	"app": `{"name":"app","arch":"amd64","hypervisor":"tcg","memoryMiB":128,"kernel":"/run/moor/boot/kernel",
		"initrd":"/run/moor/vm/initramfs-0123456789abcdef.cpio.gz","cmdline":"console=ttyS0 panic=-1",
		"shares":[{"tag":"moor-root","path":"/run/moor/app/root","readonly":true},{"tag":"moor-vol0","path":"/run/moor/app/vol/0"}],"app":true}`,
	// arm64 under tcg: machine virt, a GIC, no x86 devices.
	"arm64": `{"name":"arm","arch":"arm64","hypervisor":"tcg","memoryMiB":256,"vcpus":2,"kernel":"/boot/vmlinuz-arm64",
		"initrd":"/boot/initrd-arm64","cmdline":"console=ttyAMA0","disks":[{"path":"/vol/root.img"}]}`,
	"arm64-app": `{"name":"armapp","arch":"arm64","hypervisor":"tcg","memoryMiB":128,"kernel":"/run/moor/boot/kernel",
		"initrd":"/run/moor/vm/initramfs-0123456789abcdef.cpio.gz","cmdline":"console=ttyAMA0 panic=-1",
		"shares":[{"tag":"moor-root","path":"/run/moor/app/root","readonly":true}],"app":true}`,
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
			checkGolden(t, name+".argv", []byte(strings.Join(Argv(vm, BinaryFor(vm.Arch), p), "\n")+"\n"))
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
