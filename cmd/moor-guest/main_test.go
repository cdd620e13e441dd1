package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The guest init is read into every app guest's RAM: it links the
// standard library, x/sys and the few packages of moor's it needs, and
// no cgo.
func TestLeanDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.CgoFiles}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{"golang.org/x/sys/", "github.com/lf-edge/moor/devicemodel", "github.com/lf-edge/moor/reaper",
		"github.com/lf-edge/moor/atomicfile", "github.com/lf-edge/moor/cpulist", "github.com/lf-edge/moor/ifname",
		"github.com/lf-edge/moor/cmd/moor-guest", "github.com/cyphar/filepath-securejoin", "vendor/"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, cgo, _ := strings.Cut(line, " ")
		if !strings.Contains(strings.Split(pkg, "/")[0], ".") && !strings.HasPrefix(pkg, "vendor/") {
			continue // the standard library
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(pkg, a)
		}
		if !ok || strings.HasPrefix(pkg, "github.com/lf-edge/moor/devicemodel/") && pkg != "github.com/lf-edge/moor/devicemodel/guest" {
			t.Errorf("moor-guest links %s", pkg)
		}
		if cgo != "[]" && strings.HasPrefix(pkg, "github.com/lf-edge/moor") {
			t.Errorf("%s has cgo files %s", pkg, cgo)
		}
	}
}
