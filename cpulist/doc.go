// Package cpulist parses the kernel's CPU list format ("0-3,5,7-8", as in
// cpuset.cpus and a VM's cpus pinning): moor's one parser of it.
//
// It must not import anything but the standard library: devicemodel, and
// so the lean anchor, links it.
//
// Concurrency: Parse is pure.
package cpulist
