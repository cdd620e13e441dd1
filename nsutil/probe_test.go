package nsutil

import (
	"errors"
	"os"
	"testing"
	"testing/fstest"
)

// fakeProc makes a procfs stand-in holding the given files.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	root := t.TempDir()
	if err := os.CopyFS(root, fsys); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestTimeNSSupported: a kernel with time namespaces has
// /proc/self/timens_offsets; one without is ErrNoTimeNS.
func TestTimeNSSupported(t *testing.T) {
	if err := TimeNSSupported(fakeProc(t, map[string]string{"self/timens_offsets": ""})); err != nil {
		t.Fatalf("with timens_offsets: %v", err)
	}
	err := TimeNSSupported(fakeProc(t, map[string]string{"self/stat": ""}))
	if !errors.Is(err, ErrNoTimeNS) {
		t.Fatalf("without timens_offsets: %v, want ErrNoTimeNS", err)
	}
}

// TestUserNSSupported: user namespaces need /proc/self/ns/user and a
// user.max_user_namespaces that is not 0 (a kernel without the knob has
// no such limit).
func TestUserNSSupported(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		ok    bool
	}{
		{"available", map[string]string{"self/ns/user": "", "sys/user/max_user_namespaces": "63779\n"}, true},
		{"no knob", map[string]string{"self/ns/user": ""}, true},
		{"limit 0", map[string]string{"self/ns/user": "", "sys/user/max_user_namespaces": "0\n"}, false},
		{"not built in", map[string]string{"self/ns/net": ""}, false},
	} {
		err := UserNSSupported(fakeProc(t, c.files))
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrNoUserNS) {
			t.Errorf("%s: %v, want ErrNoUserNS", c.name, err)
		}
	}
}

// TestNewUserNSWantsMappings: a user namespace without mappings is
// refused before any helper is started.
func TestNewUserNSWantsMappings(t *testing.T) {
	if _, err := NewUserNS(nil, nil, []IDMap{{0, 100000, 1}}); err == nil {
		t.Fatal("no UID mapping was taken")
	}
}
