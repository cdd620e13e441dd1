package containerd

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/lf-edge/moor/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestConfigPlain(t *testing.T) {
	b, err := Config(Options{Dir: "/tmp/ctd-test"})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "plain.toml", b, *update)
}

func TestConfigCRI(t *testing.T) {
	b, err := Config(Options{Dir: "/tmp/ctd-test", CRI: &CRI{
		SandboxImage:   "docker.io/library/pause:moor",
		DefaultRuntime: "moor",
		Runtimes: []Runtime{
			{Name: "runc", BinaryName: "/usr/sbin/runc", Root: "/run/containerd/runc"},
			{Name: "moor", BinaryName: "/usr/local/bin/moor"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "cri.toml", b, *update)
}

func TestConfigCRIDefaultIsFirst(t *testing.T) {
	b, err := Config(Options{Dir: "/d", CRI: &CRI{SandboxImage: "p", Runtimes: []Runtime{{Name: "moor", BinaryName: "/moor"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `default_runtime_name = "moor"`) {
		t.Fatalf("no default runtime name:\n%s", b)
	}
}

func TestConfigRefused(t *testing.T) {
	long := "/" + strings.Repeat("x", 100)
	for name, o := range map[string]Options{
		"relative dir":     {Dir: "tmp/ctd"},
		"long dir":         {Dir: long},
		"no sandbox image": {Dir: "/d", CRI: &CRI{Runtimes: []Runtime{{Name: "moor", BinaryName: "/moor"}}}},
		"no runtime":       {Dir: "/d", CRI: &CRI{SandboxImage: "p"}},
		"unknown default":  {Dir: "/d", CRI: &CRI{SandboxImage: "p", DefaultRuntime: "runc", Runtimes: []Runtime{{Name: "moor", BinaryName: "/moor"}}}},
		"relative binary":  {Dir: "/d", CRI: &CRI{SandboxImage: "p", Runtimes: []Runtime{{Name: "moor", BinaryName: "moor"}}}},
		"dotted name":      {Dir: "/d", CRI: &CRI{SandboxImage: "p", Runtimes: []Runtime{{Name: "a.b", BinaryName: "/moor"}}}},
	} {
		if _, err := Config(o); !errors.Is(err, ErrOptions) {
			t.Errorf("%s: error %v, want ErrOptions", name, err)
		}
	}
}

func TestShimTask(t *testing.T) {
	const sock = "/tmp/ctd/ctd.sock"
	for _, c := range []struct {
		args []string
		task string
		ok   bool
	}{
		{[]string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", sock}, "k8s.io/abc", true},
		{[]string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", sock, "-debug"}, "k8s.io/abc", true},
		{[]string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "default", "-id", "abc", "-address", "/run/containerd/containerd.sock"}, "", false},
		{[]string{"/usr/bin/sleep", "-address", sock}, "", false},
		{nil, "", false},
	} {
		task, ok := shimTask(c.args, sock)
		if task != c.task || ok != c.ok {
			t.Errorf("shimTask(%q) = %q, %v; want %q, %v", c.args, task, ok, c.task, c.ok)
		}
	}
}
