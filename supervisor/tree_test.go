package supervisor

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeUnit(t *testing.T, dir, annotations string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := `{"root":{"path":"rootfs"},"process":{"args":["sh"]},"annotations":{` + annotations + `}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadTree(t *testing.T) {
	dir := t.TempDir()
	writeUnit(t, filepath.Join(dir, "onboot", "010-second"), "")
	writeUnit(t, filepath.Join(dir, "onboot", "001-first"), "")
	writeUnit(t, filepath.Join(dir, "services", "sshd"), `"moor.restart":"always","moor.stop-timeout":"2s"`)
	writeUnit(t, filepath.Join(dir, "services", "bad"), `"moor.restart":"sometimes"`)
	tree, err := ReadTree(dir)
	if err == nil {
		t.Fatal("a bad restart annotation was not reported")
	}
	if len(tree.Onboot) != 2 || tree.Onboot[0].ID != "first" || tree.Onboot[1].ID != "second" {
		t.Fatalf("onboot order: %+v", tree.Onboot)
	}
	if len(tree.Services) != 1 {
		t.Fatalf("services: %+v", tree.Services)
	}
	s := tree.Services[0]
	if s.ID != "sshd" || s.Policy.Mode != RestartAlways || s.StopTimeout != 2*time.Second || s.Digest == "" {
		t.Fatalf("service: %+v", s)
	}
	if _, err := ReadTree(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("a missing tree was accepted")
	}
}
