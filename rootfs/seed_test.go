package rootfs

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// template is what cmd/moor's default spec gives: runc's example plus the
// minimum viable resources.
func template() *specs.Spec {
	s := specconv.Example()
	s.Process.Terminal = false
	limit, shares := int64(256<<20), uint64(1024)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	return s
}

func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, name, append(got, '\n'), *update)
}

func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func imageSeed(t *testing.T) *specs.Spec {
	t.Helper()
	img, err := ParseImageConfig(open(t, "image-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := FromImageConfig(template(), img, "/vol/rootfs", open(t, "passwd"), open(t, "group"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFromImageConfig(t *testing.T) {
	s := imageSeed(t)
	if u := s.Process.User; u.UID != 1000 || u.GID != 2000 {
		t.Errorf("user %+v: want uid 1000 (app), gid 2000 (extra)", u)
	}
	if got := s.Annotations[StopSignalAnnotation]; got != "SIGINT" {
		t.Errorf("stop signal annotation %q, want SIGINT", got)
	}
	checkGolden(t, "image-config.golden.json", s)
}

func TestUserResolution(t *testing.T) {
	for _, tc := range []struct {
		user      string
		uid, gid  uint32
		sgids     []uint32
		wantError bool
	}{
		{user: "", uid: 0, gid: 0},
		{user: "app", uid: 1000, gid: 1000, sgids: []uint32{2000}},
		{user: "1000", uid: 1000, gid: 1000, sgids: []uint32{2000}},
		{user: "app:extra", uid: 1000, gid: 2000},
		{user: "4242:4343", uid: 4242, gid: 4343},
		{user: "nobody-here", wantError: true},
		{user: "app:nogroup", wantError: true},
	} {
		t.Run(tc.user, func(t *testing.T) {
			img := &ImageConfig{Config: ImageRuntimeConfig{User: tc.user, Cmd: []string{"true"}}}
			s, err := FromImageConfig(template(), img, "/r", open(t, "passwd"), open(t, "group"))
			if tc.wantError {
				if err == nil {
					t.Fatalf("user %q: no error, got %+v", tc.user, s.Process.User)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u := s.Process.User
			if u.UID != tc.uid || u.GID != tc.gid || len(u.AdditionalGids) != len(tc.sgids) {
				t.Fatalf("user %q: got %+v, want %d:%d %v", tc.user, u, tc.uid, tc.gid, tc.sgids)
			}
		})
	}
}

func TestApplyApp(t *testing.T) {
	app, err := ParseApp(open(t, "app.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ApplyApp(imageSeed(t), app)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Readonly || s.Annotations[WritableAnnotation] != "true" {
		t.Errorf("root %+v, annotations %v: want writable", s.Root, s.Annotations)
	}
	if got := lookupEnv(s.Process.Env, "IMGVAR"); got != "overridden" {
		t.Errorf("IMGVAR=%q: the app's env must win", got)
	}
	checkGolden(t, "app.golden.json", s)
}

func TestParseAppErrors(t *testing.T) {
	for _, tc := range []struct{ json, field string }{
		{`{"memoryMiB": -1}`, "memoryMiB"},
		{`{"cpus": -2}`, "cpus"},
		{`{"cpus": 3, "cpuset": "0-1"}`, "cpus"},
		{`{"cpuset": "3-1"}`, "cpuset"},
		{`{"env": ["NOVALUE"]}`, "env[0]"},
		{`{"cwd": "relative"}`, "cwd"},
		{`{"volumes": [{"source": "rel", "destination": "/d"}]}`, "volumes[0].source"},
		{`{"volumes": [{"source": "/s", "destination": "/"}]}`, "volumes[0].destination"},
		{`{"volumes": [{"source": "/a", "destination": "/d"}, {"source": "/b", "destination": "/d/"}]}`, "volumes[1].destination"},
		{`{"netDevices": {"a/b": {}}}`, "netDevices.a/b"},
		{`{"netDevices": {"veth0": {"name": "e,th0"}}}`, "netDevices.veth0.name"},
		{`{"netDevices": {"..": {}}}`, "netDevices..."},
		{`{"netDevices": {"veth0": {"name": "eth0"}, "veth1": {"name": "eth0"}}}`, ".name"},
		{`{"netNamespace": "rel"}`, "netNamespace"},
		{`{"memory": 5}`, "memory"},
		{`{"args": "sh"}`, "args"},
	} {
		_, err := ParseApp(strings.NewReader(tc.json))
		if err == nil || !errors.Is(err, ErrInvalidApp) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v, want one naming %s", tc.json, err, tc.field)
		}
	}
}

func TestApplyAppConflicts(t *testing.T) {
	host, err := HostRootSeed(template())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyApp(host, &App{RootWritable: true}); err == nil || !strings.Contains(err.Error(), "rootWritable") {
		t.Errorf("writable host root: %v, want an error naming rootWritable", err)
	}
	noNet := template()
	noNet.Linux.Namespaces = nil
	if _, err := ApplyApp(noNet, &App{NetDevices: map[string]NetDev{"veth0": {}}}); err == nil || !strings.Contains(err.Error(), "netDevices") {
		t.Errorf("interfaces without a network namespace: %v, want an error naming netDevices", err)
	}
	if _, err := ApplyApp(noNet, &App{Hostname: "x"}); err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Errorf("hostname without a UTS namespace: %v, want an error naming hostname", err)
	}
	s, err := ApplyApp(noNet, &App{NetNamespace: "/run/netns/x", NetDevices: map[string]NetDev{"veth0": {}}})
	if err != nil {
		t.Fatal(err)
	}
	if i := namespaceIndex(s, specs.NetworkNamespace); i < 0 || s.Linux.Namespaces[i].Path != "/run/netns/x" {
		t.Errorf("netNamespace not joined: %+v", s.Linux.Namespaces)
	}
}

func TestVolumeSeedPrefersConfigJSON(t *testing.T) {
	vol := t.TempDir()
	if err := os.Mkdir(filepath.Join(vol, RootfsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	own := template()
	own.Root = &specs.Root{Path: "rootfs", Readonly: true}
	own.Process.Args = []string{"/own"}
	b, _ := json.Marshal(own)
	write(t, filepath.Join(vol, SpecFile), string(b))
	write(t, filepath.Join(vol, ImageConfigFile), `{"config":{"Cmd":["/image"]}}`)
	s, err := VolumeSeed(vol, template())
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.Args[0] != "/own" || s.Root.Path != filepath.Join(vol, "rootfs") {
		t.Fatalf("args %v, root %s: want config.json's, root made absolute", s.Process.Args, s.Root.Path)
	}
	os.Remove(filepath.Join(vol, SpecFile))
	if s, err = VolumeSeed(vol, template()); err != nil || s.Process.Args[0] != "/image" {
		t.Fatalf("without config.json: %v, %v: want the image config's args", s, err)
	}
	os.Remove(filepath.Join(vol, ImageConfigFile))
	if _, err = VolumeSeed(vol, template()); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("empty volume: %v, want ErrNoSeed", err)
	}
}

func TestBuildNeedsArgs(t *testing.T) {
	vol := t.TempDir()
	os.Mkdir(filepath.Join(vol, RootfsDir), 0o755)
	write(t, filepath.Join(vol, ImageConfigFile), `{"config":{}}`)
	if _, err := Build(Source{Volume: vol, Template: template()}); err == nil || !strings.Contains(err.Error(), "args") {
		t.Fatalf("no args anywhere: %v, want an error naming args", err)
	}
	s, err := Build(Source{Volume: vol, Template: template(), App: &App{Args: []string{"/bin/true"}}})
	if err != nil || s.Process.Args[0] != "/bin/true" {
		t.Fatalf("args from the app: %v, %v", s, err)
	}
}

func TestLoaderSeed(t *testing.T) {
	loader, vol := t.TempDir(), t.TempDir()
	l := template()
	l.Root = &specs.Root{Path: "rootfs", Readonly: true}
	l.Process.Args = []string{"/usr/bin/qemu"}
	b, _ := json.Marshal(l)
	write(t, filepath.Join(loader, SpecFile), string(b))
	s, err := Build(Source{Loader: loader, Volume: vol, Template: template()})
	if err != nil {
		t.Fatal(err)
	}
	last := s.Mounts[len(s.Mounts)-1]
	if s.Root.Path != filepath.Join(loader, "rootfs") || last.Destination != LoaderVolumeMount || last.Source != vol {
		t.Fatalf("root %s, last mount %+v: want the loader's root and the volume at %s", s.Root.Path, last, LoaderVolumeMount)
	}
	if _, err := Build(Source{Template: template()}); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("no seed: %v, want ErrNoSeed", err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
