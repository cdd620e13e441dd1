// Package ociimage writes an OCI image archive (an image layout in a tar:
// oci-layout, index.json and blobs/sha256/...) holding one image made
// from a root filesystem directory: one gzip'd layer tar, an image config
// with the entrypoint, command, environment and working directory given,
// and a manifest. The archive is what `ctr -n NS images import` and
// `podman load` take, so tests and the benchmark can hand a local busybox
// root to containerd without a registry.
//
// It is pure apart from reading the directory: it writes only to the
// io.Writer it is given, and the same directory and Image always give the
// same bytes (entries in lexical order, fixed modification times, no
// user or group names, a gzip header without name or time). Files,
// directories, symlinks, hard links and device nodes are archived with
// their mode, owner and size; the whole layer is held in memory while the
// archive is written, so it is meant for small roots such as busybox's.
//
// It must not unpack, import or run anything. It holds no state; calls
// are safe from several goroutines.
package ociimage
