// Command moor is a task supervisor with runc's command line. See the
// lifecycle package for the tasks; this package only parses arguments,
// calls it and turns errors into exit codes.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/internal/taskmain"
)

func main() { taskmain.Main(func() int { return run(os.Args) }) }

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
