package vmbundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
)

func TestPoststopRemovesStale(t *testing.T) {
	dir := t.TempDir()
	stale := append(qemu.PathsIn(dir).Stale(), filepath.Join(dir, devicemodel.RunStateFile))
	for _, p := range stale[1:] { // the first is missing already: that is fine
		writeFile(t, p, "")
	}
	kept := []string{filepath.Join(dir, devicemodel.VMFile), filepath.Join(dir, devicemodel.VarsFile), filepath.Join(dir, "console.log")}
	for _, p := range kept {
		writeFile(t, p, "x")
	}
	a := map[string]string{devicemodel.AnnotationRunDir: dir, devicemodel.AnnotationHypervisor: "tcg", devicemodel.AnnotationName: "demo"}
	if err := Poststop(a); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s is gone: %v", p, err)
		}
	}
}

func TestPoststopNotVM(t *testing.T) {
	if err := Poststop(map[string]string{"other": "x"}); err != nil {
		t.Fatalf("Poststop of a container task: %v", err)
	}
}

// fakeXL writes an xl script that logs its arguments to calls and answers
// "xl destroy" and "xl list" with the shell commands given.
func fakeXL(t *testing.T, destroy, list string) (xl, calls string) {
	t.Helper()
	dir := t.TempDir()
	xl, calls = filepath.Join(dir, "xl"), filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\n" +
		"case $1 in\n" +
		"destroy) " + destroy + " ;;\n" +
		"list) " + list + " ;;\n" +
		"esac\n"
	if err := os.WriteFile(xl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return xl, calls
}

// What xl list says of a domain that is gone, and of one that is there.
const (
	gone   = "echo \"$2 is an invalid domain identifier (rc=-6)\" >&2; exit 1"
	listed = "printf 'Name ID Mem VCPUs State Time(s)\\nx1 3 64 1 -b---- 0.1\\n'"
)

func TestPoststopXen(t *testing.T) {
	for name, c := range map[string]struct {
		destroy, list, calls string
		fails                bool
	}{
		"destroyed":  {"exit 0", "exit 1", "destroy x1\n", false},
		"gone":       {"echo 'x1 is an invalid domain identifier' >&2; exit 1", gone, "destroy x1\nlist x1\n", false},
		"xl refuses": {"echo 'libxl: permission denied' >&2; exit 2", listed, "destroy x1\nlist x1\n", true},
	} {
		t.Run(name, func(t *testing.T) {
			xl, calls := fakeXL(t, c.destroy, c.list)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, devicemodel.RunStateFile), "{}")
			err := Poststop(map[string]string{
				devicemodel.AnnotationRunDir: dir, devicemodel.AnnotationHypervisor: "xen",
				devicemodel.AnnotationName: "x1", devicemodel.AnnotationXL: xl,
			})
			if got, _ := os.ReadFile(calls); string(got) != c.calls {
				t.Errorf("xl calls %q, want %q", got, c.calls)
			}
			if c.fails {
				if err == nil || !strings.Contains(err.Error(), "permission denied") {
					t.Fatalf("Poststop with xl failing: %v, want xl's error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, devicemodel.RunStateFile)); err == nil {
				t.Error("the run state is still there")
			}
		})
	}
}
