package userns

import (
	"errors"
	"os"
	"testing"
	"testing/fstest"
)

// TestSupported: user namespaces need /proc/self/ns/user and a
// user.max_user_namespaces that is not 0 (a kernel without the knob has
// no such limit).
func TestSupported(t *testing.T) {
	ns := &fstest.MapFile{}
	limit := func(n string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(n + "\n")} }
	for _, c := range []struct {
		name string
		proc fstest.MapFS
		ok   bool
	}{
		{"available", fstest.MapFS{"self/ns/user": ns, "sys/user/max_user_namespaces": limit("63779")}, true},
		{"no knob", fstest.MapFS{"self/ns/user": ns}, true},
		{"limit 0", fstest.MapFS{"self/ns/user": ns, "sys/user/max_user_namespaces": limit("0")}, false},
		{"not built in", fstest.MapFS{"self/ns/net": ns}, false},
	} {
		proc := t.TempDir()
		if err := os.CopyFS(proc, c.proc); err != nil {
			t.Fatal(err)
		}
		err := Supported(proc)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrNoUserNS) {
			t.Errorf("%s: %v, want ErrNoUserNS", c.name, err)
		}
	}
}

// TestNewNSWantsMappings: a user namespace without mappings is refused
// before any helper is started.
func TestNewNSWantsMappings(t *testing.T) {
	if _, err := newNS(nil, nil, mappings([3]uint32{0, 100000, 1})); err == nil {
		t.Fatal("no UID mapping was taken")
	}
}
