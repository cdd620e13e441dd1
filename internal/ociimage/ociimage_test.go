package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testRoot makes a small root: a directory, an executable, a symlink to
// it and a hard link.
func testRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "bin", "busybox"), filepath.Join(root, "bin", "sleep")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

var testImage = Image{
	Name:       "docker.io/library/busybox:moor",
	Entrypoint: []string{"/bin/sh", "-c"},
	Cmd:        []string{"sleep 1"},
	Env:        []string{"PATH=/bin"},
	WorkingDir: "/",
}

// readArchive returns the regular files of the outer tar by name.
func readArchive(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = data
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blob returns the blob a descriptor points at, checking its size and
// that its name is its digest.
func blob(t *testing.T, files map[string][]byte, d Descriptor) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
	if !ok {
		t.Fatalf("blob %s (%s) missing from the archive", d.Digest, d.MediaType)
	}
	if got := sha(b); got != d.Digest || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: digest %s, size %d; descriptor says size %d", d.Digest, got, len(b), d.Size)
	}
	return b
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// TestWriteReadBack reads the archive back: every blob is named by its
// digest, index → manifest → config and layer hold together, the config's
// diff_id is the digest of the uncompressed layer, and the layer holds the
// root.
func TestWriteReadBack(t *testing.T) {
	var buf bytes.Buffer
	mdesc, err := Write(&buf, testRoot(t), testImage)
	if err != nil {
		t.Fatal(err)
	}
	files := readArchive(t, buf.Bytes())
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %q", got)
	}
	var idx Index
	decode(t, files["index.json"], &idx)
	if idx.SchemaVersion != 2 || len(idx.Manifests) != 1 {
		t.Fatalf("index: %+v", idx)
	}
	d := idx.Manifests[0]
	if d.Digest != mdesc.Digest || d.MediaType != MediaTypeManifest {
		t.Fatalf("index names %+v, Write returned %+v", d, mdesc)
	}
	if d.Annotations[AnnotationContainerdName] != testImage.Name || d.Annotations[AnnotationRefName] != "moor" {
		t.Errorf("index annotations: %v", d.Annotations)
	}
	if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture == "" {
		t.Errorf("index platform: %+v", d.Platform)
	}
	var m Manifest
	decode(t, blob(t, files, d), &m)
	if m.SchemaVersion != 2 || m.Config.MediaType != MediaTypeConfig || len(m.Layers) != 1 || m.Layers[0].MediaType != MediaTypeLayer {
		t.Fatalf("manifest: %+v", m)
	}
	var cfg Config
	decode(t, blob(t, files, m.Config), &cfg)
	if got := strings.Join(cfg.Config.Entrypoint, " ") + "|" + strings.Join(cfg.Config.Cmd, " ") + "|" + strings.Join(cfg.Config.Env, " "); got != "/bin/sh -c|sleep 1|PATH=/bin" {
		t.Errorf("config: %+v", cfg.Config)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, m.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != sha(layer) {
		t.Fatalf("rootfs %+v, layer's digest %s", cfg.RootFS, sha(layer))
	}
	checkLayer(t, layer)
}

// checkLayer checks the layer's entries: names, types, links, modes.
func checkLayer(t *testing.T, layer []byte) {
	t.Helper()
	var got []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(epoch) || hdr.Uname != "" {
			t.Errorf("%s: mtime %v, user %q", hdr.Name, hdr.ModTime, hdr.Uname)
		}
		got = append(got, string(hdr.Typeflag)+" "+hdr.Name+" "+hdr.Linkname+" "+hdr.FileInfo().Mode().Perm().String())
	}
	want := []string{
		"5 bin/  -rwxr-xr-x",
		"0 bin/busybox  -rwxr-xr-x",
		"2 bin/sh busybox -rwxrwxrwx",
		"1 bin/sleep bin/busybox -rwxr-xr-x",
		"5 etc/  -rwxr-xr-x",
		"0 etc/passwd  -rw-r--r--",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("layer entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWriteDeterministic writes the same root twice, and a copy of it
// made later: the bytes are the same.
func TestWriteDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	root := testRoot(t)
	if _, err := Write(&a, root, testImage); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&b, root, testImage); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&c, testRoot(t), testImage); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || !bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("two archives of the same root differ")
	}
	other := testImage
	other.Cmd = []string{"sleep 2"}
	var d bytes.Buffer
	if _, err := Write(&d, root, other); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), d.Bytes()) {
		t.Fatal("a different command gives the same archive")
	}
}

func TestTag(t *testing.T) {
	for ref, want := range map[string]string{
		"docker.io/library/busybox:1.36": "1.36",
		"localhost:5000/pause":           "latest",
		"pause":                          "latest",
	} {
		if got := tag(ref); got != want {
			t.Errorf("tag(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestWriteMissingRoot(t *testing.T) {
	if _, err := Write(io.Discard, filepath.Join(t.TempDir(), "none"), testImage); err == nil {
		t.Fatal("no error for a missing root")
	}
}
