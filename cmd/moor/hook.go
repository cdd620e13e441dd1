package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
)

// hookCommand runs a hook for libcontainer with the status of its moment:
// it reads the container state on stdin, sets its status and hands it to
// the hook, whose exit status it passes on.
var hookCommand = cli.Command{
	Name:      lifecycle.HookVerb,
	Usage:     "run a task's hook with the given status in its state (moor runs this itself)",
	ArgsUsage: "<status> -- <path> [args...]",
	Hidden:    true,
	Action: func(ctx *cli.Context) error {
		args := []string(ctx.Args())
		if len(args) > 1 && args[1] == "--" { // the flag parser may keep it
			args = append(args[:1], args[2:]...)
		}
		if len(args) < 2 {
			return errors.New("hook: want <status> -- <path> [args...]")
		}
		var state specs.State
		if err := json.NewDecoder(os.Stdin).Decode(&state); err != nil {
			return fmt.Errorf("hook: read state: %w", err)
		}
		state.Status = specs.ContainerState(args[0])
		b, err := json.Marshal(state)
		if err != nil {
			return fmt.Errorf("hook: %w", err)
		}
		hookArgs := args[2:]
		if len(hookArgs) == 0 {
			hookArgs = []string{args[1]}
		}
		cmd := &exec.Cmd{Path: args[1], Args: hookArgs, Env: os.Environ(),
			Stdin: bytes.NewReader(b), Stdout: os.Stdout, Stderr: os.Stderr}
		err = cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitCode(max(ee.ExitCode(), 1))
		}
		if err != nil {
			return fmt.Errorf("hook %s: %w", args[1], err)
		}
		return nil
	},
}
