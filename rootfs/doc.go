// Package rootfs owns a task's root volume and its other volumes: where the
// first spec comes from (the seed) and how the root is made real.
//
// A volume is a directory. The root volume is one of three kinds:
//
//   - a volume holding rootfs/ and either config.json (a runtime spec, used
//     as it is) or image-config.json (an OCI image config: Entrypoint and
//     Cmd become the args, Env the environment, User is resolved against
//     the volume's /etc/passwd and /etc/group, Labels become annotations,
//     StopSignal the signal stop sends); config.json wins, as in EVE;
//   - the host's own root, read-only, for a task with no root volume;
//   - none, in which case a loader (a pre-made OCI bundle) gives the spec.
//
// The app's own settings (App, read from APP.json) win over the seed.
// Build puts these together; the parsers take an io.Reader and the
// builders are pure, so both are tested against golden files.
//
// At create, Prepare makes the root real in the task's scratch directory:
// a read-only root is used as it is; a writable root (annotation
// moor.root.writable) is an overlay whose upper and work directories live
// in the scratch directory, so the volume is never modified; the host root
// is a bind mount. A task with a user namespace of its own whose root is
// not owned by its mapped root gets its root mounted idmapped in the
// scratch directory first, by package userns, which owns user namespaces;
// the overlay of a writable root then lies on that mount. APP.json's
// userNamespace becomes the spec's user namespace and mappings here (its
// range checked as the APP.json field); userns checks the spec's.
// Prepare (and Build before it) also refuses mount destinations that
// climb out of the root, by ".." or through a relative symlink (an
// absolute one means the task's own root, as the runtime resolves it),
// and pins a network namespace for a task that moves host interfaces in,
// so Cleanup can bring them back. Cleanup undoes all of it, also after
// moor crashed half-way; a create cleans a scratch directory left by a
// crashed one with it first.
//
// It must not manage processes.
//
// Concurrency: the functions keep no state; Prepare and Cleanup of one
// scratch directory must not run concurrently.
package rootfs
