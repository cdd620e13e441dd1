package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestCheckMounts(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"data", "usr/share"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"abs":    "/tmp",            // absolute: inside the task, the task's own /tmp
		"climb":  "../../../../tmp", // climbs above the root
		"inside": "usr/share",       // relative, stays inside
		"gone":   "/nonexistent/x",  // dangling, absolute: made inside the root
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		dest   string
		escape bool
	}{
		{"/data", false},
		{"/new/dir", false},
		{"/inside/x", false},
		{"/abs", false},
		{"/abs/sub", false},
		{"/climb", true},
		{"/climb/sub", true},
		{"/inside/../climb", false}, // ".." after the link: usr/climb, inside
		{"/gone", false},
		{"/data/../../etc", true},
	} {
		err := CheckMounts(root, []specs.Mount{{Destination: tc.dest, Type: "bind", Source: "/x"}})
		if tc.escape != errors.Is(err, ErrEscape) {
			t.Errorf("%s: error %v, want escape %v", tc.dest, err, tc.escape)
		}
	}
}
