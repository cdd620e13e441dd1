package rootfs

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestAppUserNamespace: userNamespace gives the task a user namespace of
// its own mapping 0 to size-1 to the host range, and idmapped volumes get
// the ridmap option.
func TestAppUserNamespace(t *testing.T) {
	a, err := ParseApp(strings.NewReader(`{"userNamespace": {"hostUID": 100000, "hostGID": 200000, "size": 65536},
		"volumes": [{"source": "/persist/data", "destination": "/data", "idmap": true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	seed := &specs.Spec{Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{Args: []string{"sh"}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}}
	s, err := ApplyApp(seed, a)
	if err != nil {
		t.Fatal(err)
	}
	if !NewUserNS(s) {
		t.Fatalf("no user namespace: %+v", s.Linux.Namespaces)
	}
	want := func(host uint32) []specs.LinuxIDMapping {
		return []specs.LinuxIDMapping{{ContainerID: 0, HostID: host, Size: 65536}}
	}
	if !slices.Equal(s.Linux.UIDMappings, want(100000)) || !slices.Equal(s.Linux.GIDMappings, want(200000)) {
		t.Fatalf("mappings %+v %+v", s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	if m := s.Mounts[len(s.Mounts)-1]; !slices.Contains(m.Options, "ridmap") {
		t.Fatalf("idmapped volume's options %v, want ridmap", m.Options)
	}
	if len(seed.Linux.Namespaces) != 1 {
		t.Fatal("the seed was changed")
	}
}

// TestAppUserNamespaceRefused: host ID 0, an empty range, one past the
// largest ID, and an idmapped volume without a user namespace are errors
// naming the field.
func TestAppUserNamespaceRefused(t *testing.T) {
	for _, c := range []struct{ app, field string }{
		{`{"hostUID": 0, "hostGID": 100000, "size": 65536}`, "hostUID"},
		{`{"hostUID": 100000, "hostGID": 0, "size": 65536}`, "hostGID"},
		{`{"hostUID": 100000, "hostGID": 100000, "size": 0}`, "size"},
		{`{"hostUID": 4294967295, "hostGID": 100000, "size": 1}`, "hostUID"},
		{`{"hostUID": 100000, "hostGID": 4294901760, "size": 65536}`, "hostGID"},
	} {
		_, err := ParseApp(strings.NewReader(`{"userNamespace": ` + c.app + `}`))
		if !errors.Is(err, ErrInvalidApp) || !strings.Contains(err.Error(), "userNamespace."+c.field+":") {
			t.Errorf("%s: %v, want ErrInvalidApp naming userNamespace.%s", c.app, err, c.field)
		}
	}
	a, err := ParseApp(strings.NewReader(`{"volumes": [{"source": "/d", "destination": "/d", "idmap": true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	seed := &specs.Spec{Root: &specs.Root{Path: "rootfs"}, Process: &specs.Process{Args: []string{"sh"}}, Linux: &specs.Linux{}}
	if _, err := ApplyApp(seed, a); !errors.Is(err, ErrInvalidApp) || !strings.Contains(err.Error(), "volumes[0].idmap") {
		t.Fatalf("idmap without a user namespace: %v", err)
	}
}
