package lifecycle_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/lifecycle"
)

// TestIsolationRefusedBeforeAnything: a delegation, user namespace or
// time namespace moor cannot give is refused with ErrInvalidSpec naming
// the field, and the state root holds nothing afterwards (the name was
// never claimed).
func TestIsolationRefusedBeforeAnything(t *testing.T) {
	cases := []struct {
		name  string
		field string
		edit  func(s *specs.Spec)
	}{
		{"delegate=yes", "annotations.moor.cgroup.delegate", func(s *specs.Spec) {
			s.Annotations = map[string]string{lifecycle.DelegateAnnotation: "yes"}
		}},
		{"delegated relative path", "linux.cgroupsPath", func(s *specs.Spec) {
			s.Annotations = map[string]string{lifecycle.DelegateAnnotation: "true"}
			s.Linux.CgroupsPath = "relative/P"
		}},
		{"delegated joined cgroupns", "linux.namespaces", func(s *specs.Spec) {
			s.Annotations = map[string]string{lifecycle.DelegateAnnotation: "true"}
			s.Linux.CgroupsPath = "/moor-unit/never-made"
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace, Path: "/proc/1/ns/cgroup"})
		}},
		{"mappings without a user namespace", "linux.uidMappings", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1}}
		}},
		{"host root mapped", "linux.uidMappings[0].hostID", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		}},
		{"offsets without a time namespace", "linux.timeOffsets", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1000}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, lifecycle.Options{})
			o := e.options(t, "iso", "true")
			c.edit(o.Spec)
			_, err := e.tasks.Create(context.Background(), o)
			if !errors.Is(err, lifecycle.ErrInvalidSpec) || !strings.Contains(err.Error(), c.field+":") {
				t.Fatalf("create: %v, want ErrInvalidSpec naming %s", err, c.field)
			}
			entries, err := os.ReadDir(e.root)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if len(entries) > 0 {
				t.Fatalf("the state root holds %v after a refused create", entries)
			}
		})
	}
}
