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
