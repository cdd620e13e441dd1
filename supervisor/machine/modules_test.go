package machine

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseModules(t *testing.T) {
	got, err := ParseModules(strings.NewReader("# loaded at boot\nbutton\n\n  evdev  \nloop max_loop=8 max_part=2\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []ModuleLine{{Name: "button"}, {Name: "evdev"}, {Name: "loop", Params: "max_loop=8 max_part=2"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestModulesStep: each listed module after what it needs, once each, its
// parameters for itself only; a module loaded already is fine; one the
// kernel has no file for is reported and the others still load.
func TestModulesStep(t *testing.T) {
	m, fs, log := newTestMachine(t, "")
	dir := "lib/modules/6.1.0-test/"
	writeFiles(t, m.root, map[string]string{
		"etc/modules": "9pnet_virtio debug=1\nevdev\nnosuch\nnet9p\n",
		dir + "modules.dep": "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs.ko\n" +
			"kernel/net/9p/9pnet.ko: kernel/fs/netfs.ko\nkernel/fs/netfs.ko:\nkernel/drivers/input/evdev.ko:\n",
		dir + "modules.builtin":               "kernel/net/9p/net9p.ko\n",
		dir + "kernel/net/9p/9pnet_virtio.ko": "m", dir + "kernel/net/9p/9pnet.ko": "m", dir + "kernel/fs/netfs.ko": "m",
		dir + "kernel/drivers/input/evdev.ko": "m",
	})
	fs.fail["module /"+dir+"kernel/drivers/input/evdev.ko"] = unix.EEXIST
	err := m.modules()
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("error %v, want one naming nosuch", err)
	}
	want := []string{
		"module /" + dir + "kernel/fs/netfs.ko",
		"module /" + dir + "kernel/net/9p/9pnet.ko",
		"module /" + dir + "kernel/net/9p/9pnet_virtio.ko debug=1",
		"module /" + dir + "kernel/drivers/input/evdev.ko",
	}
	if got := fs.got(); !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(log.String(), "modules=netfs,9pnet,9pnet_virtio,evdev") {
		t.Errorf("the log does not list the modules:\n%s", log)
	}
}

func TestModulesStepWithoutList(t *testing.T) {
	m, fs, _ := newTestMachine(t, "")
	if err := m.modules(); err != nil || len(fs.got()) != 0 {
		t.Errorf("without %s: %v, calls %q", ModulesFile, err, fs.got())
	}
}
