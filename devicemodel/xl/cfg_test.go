package xl

import (
	"flag"
	"strings"
	"testing"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var descriptions = map[string]string{
	"hvm":     `{"name":"demo","hypervisor":"xen","memoryMiB":128,"vcpus":1}`,
	"pv":      `{"name":"pvguest","uuid":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","hypervisor":"xen","mode":"pv","memoryMiB":256,"vcpus":2,"kernel":"/boot/vmlinuz","initrd":"/boot/initrd","cmdline":"root=/dev/xvda"}`,
	"pinning": `{"name":"pinned","hypervisor":"xen","memoryMiB":1024,"vcpus":2,"cpus":"2-3"}`,
	"disks":   `{"name":"disks","hypervisor":"xen","memoryMiB":512,"disks":[{"path":"/vol/root.qcow2","format":"qcow2"},{"path":"/vol/data.img","readonly":true}]}`,
	"nics":    `{"name":"net","hypervisor":"xen","memoryMiB":512,"nics":[{"tap":"nbu1x1","mac":"02:16:3e:00:00:01","bridge":"bn1"},{"tap":"nbu1x2"}]}`,
	"fml":     `{"name":"win","hypervisor":"xen","mode":"fml","memoryMiB":4096,"vcpus":4,"firmware":"/usr/lib/xen/boot/ovmf.bin","nics":[{"tap":"nbu2x1","bridge":"bn1"}]}`,
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, name, got, *update)
}

func TestGolden(t *testing.T) {
	for name, desc := range descriptions {
		t.Run(name, func(t *testing.T) {
			vm, err := devicemodel.Parse(strings.NewReader(desc), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name+".cfg", Config(vm))
		})
	}
}
