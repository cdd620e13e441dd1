// Package xl is the Xen backend of devicemodel: a pure builder of the xl
// cfg with EVE's fields, and a driver for the xl commands the anchor needs
// (create -p, unpause, pause, shutdown, destroy, list).
//
// The driver runs xl through a Runner, so the anchor can start xl under its
// single reaper, a process without a reaper can use Exec, and tests can
// run a fake xl. A Runner reports xl's failure as an *ExitError (exit
// status, signal, standard error); the driver decides from its fields
// (ExitError.NoDomain: exit status non-zero and xl's "is an invalid domain
// identifier" on standard error), never from an error's text.
//
// It must not start or signal anything but xl.
//
// Concurrency: the builder is pure; a Driver is safe for concurrent use
// when its Runner is.
package xl
