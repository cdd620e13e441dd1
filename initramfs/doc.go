// Package initramfs writes initial RAM file systems: gzip'd cpio archives
// in the kernel's "newc" format, made of directories, files, symlinks and
// device nodes, and of kernel modules resolved with their dependencies
// from a module directory (/lib/modules/<version>: modules.dep and
// modules.builtin). Modules the distribution ships compressed (.ko.xz,
// .ko.zst, .ko.gz) are stored decompressed, so that an init can load them
// with finit_module whatever the kernel's own decompression support.
//
// The archive is deterministic: entries in the order they were added
// (parents first, made when missing), owner root, modification time 0,
// inode numbers counted from 1. The same inputs give the same bytes, so a
// caller may cache an archive by its content.
//
// moor uses it for the initramfs of a container app inside a VM (its /init
// is moor's guest init); it is general enough for an initramfs that boots
// moor itself as a machine's PID 1.
//
// It must not run what it packs. Everything here is pure except the
// reads of host files (File from a path, the module directory) and the
// external decompressors of .xz and .zst modules (xz and zstd, run with
// the module on stdin).
//
// Concurrency: an Archive is not safe for concurrent use; a ModuleSet is
// immutable once loaded.
package initramfs
