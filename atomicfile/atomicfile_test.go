package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// onlyFiles fails the test if dir holds anything but the names given.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func checkFile(t *testing.T, path, content string, perm fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content || fi.Mode().Perm() != perm {
		t.Fatalf("%s: %q mode %v, want %q mode %v", path, b, fi.Mode().Perm(), content, perm)
	}
}

func TestWrite(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "moor.json")
	if err := Write(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "one", 0o600)
	if err := Write(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "two", 0o600)
	q := filepath.Join(dir, "pid")
	if err := Write(q, []byte("42"), 0o666); err != nil {
		t.Fatal(err)
	}
	checkFile(t, q, "42", 0o644) // the umask applies, as to os.WriteFile
	onlyFiles(t, dir, "moor.json", "pid")
}

// TestWriteFails: a rename that cannot happen leaves the target and no
// temporary file behind.
func TestWriteFails(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, []byte("x"), 0o600); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	}
	onlyFiles(t, dir, "busy")
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write into a missing directory: %v, want ErrNotExist", err)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "OVMF_VARS.fd")
	if err := Create(p, strings.NewReader("template"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, "template", 0o600)
	if err := Create(p, strings.NewReader("other"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over a file: %v, want ErrExist", err)
	}
	checkFile(t, p, "template", 0o600)
	onlyFiles(t, dir, "OVMF_VARS.fd")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestCreateReadFails(t *testing.T) {
	dir := t.TempDir()
	if err := Create(filepath.Join(dir, "f"), failingReader{}, 0o600); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Create from a failing reader: %v", err)
	}
	onlyFiles(t, dir)
}

// TestWriteAt: the file is written through the directory's descriptor; a
// symlink in its place is replaced, never followed.
func TestWriteAt(t *testing.T) {
	dir, elsewhere := t.TempDir(), filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(elsewhere, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := WriteAt(d, "f", []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(elsewhere); string(b) != "keep" {
		t.Fatalf("the symlink's target was written: %q", b)
	}
	fi, err := os.Lstat(filepath.Join(dir, "f"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("f is %v (%v), want a regular file, 0600", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d entries in the directory, want f alone", len(ents))
	}
}

// TestSweep: the temporary files a killed writer left beside a file are
// removed; the file, the temporaries of other files and look-alikes stay.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.json")
	if err := Write(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	left := []string{tempName("journal.json"), tempName("journal.json")}
	keep := []string{"journal.json", tempName("other.json"), ".journal.json.", ".journal.json.x1", "journal.json.123", ".journal.json.99999999999"}
	for _, n := range append(left, keep[1:]...) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Sweep(path); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keep)
	onlyFiles(t, dir, keep...)
	if err := Sweep(filepath.Join(t.TempDir(), "none", "f")); err == nil {
		t.Fatal("no error for a missing directory")
	}
}
