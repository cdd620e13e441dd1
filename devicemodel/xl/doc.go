// Package xl is the Xen backend of devicemodel: a pure builder of the xl
// cfg with EVE's fields, and a driver for the xl commands the anchor needs
// (create -p, unpause, pause, shutdown, destroy, list).
//
// The driver runs xl through a Runner, so the anchor can start xl under its
// single reaper and tests can run a fake xl.
//
// It must not start or signal anything but xl.
//
// Concurrency: the builder is pure; a Driver is safe for concurrent use
// when its Runner is.
package xl
