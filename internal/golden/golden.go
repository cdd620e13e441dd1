// Package golden compares what a test made with a file under the test's
// testdata/ directory, or rewrites that file when asked to (each package's
// tests own their -update flag and pass its value). It is for tests only
// and holds no state.
package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// Check fails t unless got equals testdata/<name>; with update it writes
// got there instead.
func Check(t testing.TB, name string, got []byte, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to write it): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
