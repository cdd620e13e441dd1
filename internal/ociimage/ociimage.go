package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Media types of the archive's blobs.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Annotations of the manifest's entry in index.json that name the image:
// containerd's importer takes the full reference from the first, the OCI
// layout's tag from the second.
const (
	AnnotationContainerdName = "io.containerd.image.name"
	AnnotationRefName        = "org.opencontainers.image.ref.name"
)

// epoch is the modification time of every entry, for reproducible bytes.
var epoch = time.Unix(0, 0)

// Image is what the archive's image config says, beside its root.
type Image struct {
	// Name is the image's full reference, e.g.
	// "docker.io/library/busybox:latest"; the index names the manifest
	// by it (AnnotationContainerdName) and by its tag (AnnotationRefName).
	Name       string
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	// OS and Architecture of the image; empty means linux and this
	// binary's GOARCH.
	OS, Architecture string
}

// Descriptor points at a blob of the archive.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is the OS and CPU architecture an image runs on.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is the archive's index.json.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is the image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Config is the image config (the parts of it this package writes).
type Config struct {
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       RuntimeConfig `json:"config"`
	RootFS       RootFS        `json:"rootfs"`
}

// RuntimeConfig is what a container of the image runs by default.
type RuntimeConfig struct {
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// RootFS lists the uncompressed layers' digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// WriteFile writes the archive of the image made from rootfs to path.
func WriteFile(path, rootfs string, img Image) (Descriptor, error) {
	f, err := os.Create(path)
	if err != nil {
		return Descriptor{}, fmt.Errorf("create image archive: %w", err)
	}
	desc, err := Write(f, rootfs, img)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write image archive: %w", cerr)
	}
	return desc, err
}

// Write writes the archive of the image made from the directory rootfs to
// w and returns the manifest's descriptor (as index.json has it).
func Write(w io.Writer, rootfs string, img Image) (Descriptor, error) {
	layer, diffID, err := compressedLayer(rootfs)
	if err != nil {
		return Descriptor{}, err
	}
	plat := Platform{OS: img.OS, Architecture: img.Architecture}
	if plat.OS == "" {
		plat.OS = "linux"
	}
	if plat.Architecture == "" {
		plat.Architecture = runtime.GOARCH
	}
	config, err := json.Marshal(Config{
		Architecture: plat.Architecture,
		OS:           plat.OS,
		Config:       RuntimeConfig{Env: img.Env, Entrypoint: img.Entrypoint, Cmd: img.Cmd, WorkingDir: img.WorkingDir},
		RootFS:       RootFS{Type: "layers", DiffIDs: []string{diffID}},
	})
	if err != nil {
		return Descriptor{}, fmt.Errorf("encode image config: %w", err)
	}
	cdesc, ldesc := describe(MediaTypeConfig, config), describe(MediaTypeLayer, layer)
	manifest, err := json.Marshal(Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: cdesc, Layers: []Descriptor{ldesc}})
	if err != nil {
		return Descriptor{}, fmt.Errorf("encode manifest: %w", err)
	}
	mdesc := describe(MediaTypeManifest, manifest)
	mdesc.Platform = &plat
	if img.Name != "" {
		mdesc.Annotations = map[string]string{AnnotationContainerdName: img.Name, AnnotationRefName: tag(img.Name)}
	}
	index, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{mdesc}})
	if err != nil {
		return Descriptor{}, fmt.Errorf("encode index: %w", err)
	}
	files := []layoutFile{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(cdesc), config},
		{blobPath(ldesc), layer},
		{blobPath(mdesc), manifest},
	}
	if err := writeLayout(w, files); err != nil {
		return Descriptor{}, fmt.Errorf("write image archive: %w", err)
	}
	return mdesc, nil
}

// compressedLayer is the gzip'd tar of rootfs and the digest of the tar.
func compressedLayer(rootfs string) ([]byte, string, error) {
	var tarball, layer bytes.Buffer
	if err := writeLayer(&tarball, rootfs); err != nil {
		return nil, "", err
	}
	zw, err := gzip.NewWriterLevel(&layer, gzip.BestSpeed)
	if err == nil {
		_, err = zw.Write(tarball.Bytes())
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return nil, "", fmt.Errorf("compress layer: %w", err)
	}
	return layer.Bytes(), digest(tarball.Bytes()), nil
}

// layoutFile is a file of the image layout.
type layoutFile struct {
	name string
	data []byte
}

// writeLayout writes the image layout's files, after its blob directories,
// as a tar.
func writeLayout(w io.Writer, files []layoutFile) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeLayer writes the tar of everything under root (root itself left
// out), in lexical order.
func writeLayer(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{} // (device, inode) of a file with several links → its first name
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return addEntry(tw, path, filepath.ToSlash(rel), links)
	})
	if err != nil {
		return fmt.Errorf("archive root %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive root %s: %w", root, err)
	}
	return nil
}

// addEntry writes one file, directory, link or device of the root.
func addEntry(tw *tar.Writer, path, name string, links map[[2]uint64]string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	var target string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = os.Readlink(path); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return err
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = epoch, time.Time{}, time.Time{}
	hdr.Uname, hdr.Gname = "", ""
	hdr.Format = tar.FormatUnknown
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, seen := links[key]; seen {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			links[key] = name
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(tw, f)
	if err == nil && n != hdr.Size {
		err = errors.New("file changed while it was archived")
	}
	return err
}

// describe is the descriptor of a blob.
func describe(mediaType string, blob []byte) Descriptor {
	return Descriptor{MediaType: mediaType, Digest: digest(blob), Size: int64(len(blob))}
}

// digest is the OCI digest (sha256) of b.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// blobPath is where the OCI layout keeps the blob d describes.
func blobPath(d Descriptor) string {
	return "blobs/sha256/" + strings.TrimPrefix(d.Digest, "sha256:")
}

// tag is the tag of a reference ("latest" when it has none).
func tag(ref string) string {
	for i := len(ref) - 1; i >= 0 && ref[i] != '/'; i-- {
		if ref[i] == ':' {
			return ref[i+1:]
		}
	}
	return "latest"
}
