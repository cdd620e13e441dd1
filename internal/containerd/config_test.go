package containerd

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/lf-edge/moor/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenSuffix names each config version's golden files.
var goldenSuffix = map[ConfigVersion]string{ConfigV2: "", ConfigV3: "-v3"}

func TestConfigPlain(t *testing.T) {
	for v, suffix := range goldenSuffix {
		b, err := Config(Options{Dir: "/tmp/ctd-test", Version: v})
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "plain"+suffix+".toml", b, *update)
	}
}

func TestConfigCRI(t *testing.T) {
	for v, suffix := range goldenSuffix {
		b, err := Config(Options{Dir: "/tmp/ctd-test", Version: v, CRI: &CRI{
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
		golden.Check(t, "cri"+suffix+".toml", b, *update)
	}
}

// TestConfigZeroIsV2: the zero Options render containerd 1.x's form.
func TestConfigZeroIsV2(t *testing.T) {
	zero, err1 := Config(Options{Dir: "/d"})
	v2, err2 := Config(Options{Dir: "/d", Version: ConfigV2})
	if err := errors.Join(err1, err2); err != nil || string(zero) != string(v2) {
		t.Fatalf("zero version (%v):\n%s\nwant version 2:\n%s", err, zero, v2)
	}
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
		"version 1":        {Dir: "/d", Version: 1},
		"version 4":        {Dir: "/d", Version: 4},
		"relative bin":     {Dir: "/d", Bin: "bin"},
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
