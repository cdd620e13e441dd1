// Command moor is a task supervisor with runc's command line. See the
// lifecycle package for the tasks; this package only parses arguments,
// calls it and turns errors into exit codes.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"runtime"
	"slices"

	_ "github.com/opencontainers/cgroups/devices" // device rules for the cgroup managers
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // nsexec: runs before the Go runtime in "moor init"
	"golang.org/x/sys/unix"
)

// init locks main's goroutine to the main thread. libcontainer runs a
// goroutine per start that locks its thread, joins the task's mount
// namespace and ends without unlocking; were that the main thread, Go
// would park it there for good, pinning the namespace and its mounts.
// The lock is taken here because the runtime runs init on the main
// thread, locked; by main, the goroutine may already be on another.
// A task's init (moor init) is left unlocked: it makes no task, and a
// locked goroutine would pay a thread handoff at each of its blocking
// steps.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		return
	}
	runtime.LockOSThread()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init() // the container's init: never returns
	}
	// A reader of moor's output that goes away (moor ... | head) must not
	// kill it halfway through a create, or a supervisor with its tasks: a
	// write to the broken pipe fails with EPIPE instead. Notify, not
	// Ignore: an ignored signal would stay ignored in the tasks' processes.
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
	// main's goroutine holds the main thread (see init) and only waits,
	// while moor runs on another: working on the locked thread itself
	// would cost a thread handoff at every channel operation.
	code := make(chan int)
	go func() { code <- run(os.Args) }()
	os.Exit(<-code)
}

// run is moor: it runs the verb and returns the exit status.
func run(args []string) int {
	app := newApp()
	if os.Getpid() == 1 && !slices.ContainsFunc(args[1:], func(a string) bool { return app.Command(a) != nil }) {
		// moor as a system's init; the kernel passes words of its command
		// line it does not know (no "=" or ".") as arguments: not verbs.
		args = []string{args[0], "supervise"}
	}
	err := app.Run(args)
	if err == nil || brokenStdout(err) {
		return 0
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	logError(err)
	fmt.Fprintf(os.Stderr, "moor: %v\n", err)
	return 1
}

// brokenStdout reports whether err is a write to a stdout whose reader
// went away (moor list | head): as runc, moor then ends quietly, with 0.
func brokenStdout(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Path == os.Stdout.Name() && errors.Is(err, unix.EPIPE)
}

// exitCode is returned by a verb that ends with a status of its own (run
// and exec in the foreground pass on their process's status).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
