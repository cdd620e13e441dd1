package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/reaper"
)

// HookVerb is the verb of the moor binary that runs a hook with the status
// of its moment: `moor hook STATUS -- PATH ARGS...` (see RunHook).
const HookVerb = "hook"

// arrangeHooks fits the spec's hooks to the runtime spec's lifecycle, as
// crun runs them. libcontainer runs prestart, createRuntime and
// createContainer with the status "creating"; with a hook runner (a moor
// binary) each of them is run through it, which hands the hook "created".
// startContainer keeps libcontainer's "created". Poststart and poststop
// leave libcontainer's config: libcontainer runs poststart at create and
// fails on either; moor runs them itself after start (status "running")
// and after delete ("stopped"), and a failure there is a warning. It
// returns those two lists, for the record.
func arrangeHooks(cfg *configs.Config, runner string) *specs.Hooks {
	if cfg.Hooks == nil {
		return nil
	}
	if runner != "" {
		for _, name := range []configs.HookName{configs.Prestart, configs.CreateRuntime, configs.CreateContainer} {
			for i, h := range cfg.Hooks[name] {
				if ch, ok := h.(configs.CommandHook); ok {
					cfg.Hooks[name][i] = configs.NewCommandHook(throughRunner(ch.Command, runner))
				}
			}
		}
	}
	kept := &specs.Hooks{
		Poststart: specHooks(cfg.Hooks[configs.Poststart]),
		Poststop:  specHooks(cfg.Hooks[configs.Poststop]),
	}
	delete(cfg.Hooks, configs.Poststart)
	delete(cfg.Hooks, configs.Poststop)
	if len(kept.Poststart) == 0 && len(kept.Poststop) == 0 {
		return nil
	}
	return kept
}

// throughRunner is c run by the hook runner with the status "created".
func throughRunner(c *configs.Command, runner string) *configs.Command {
	wrapped := *c
	wrapped.Path = runner
	wrapped.Args = append([]string{runner, HookVerb, string(specs.StateCreated), "--", c.Path}, c.Args...)
	return &wrapped
}

// specHooks turns libcontainer's command hooks back into spec hooks.
func specHooks(list configs.HookList) []specs.Hook {
	var out []specs.Hook
	for _, h := range list {
		ch, ok := h.(configs.CommandHook)
		if !ok {
			continue
		}
		sh := specs.Hook{Path: ch.Path, Args: ch.Args, Env: ch.Env}
		if ch.Timeout != nil {
			secs := int(ch.Timeout.Seconds())
			sh.Timeout = &secs
		}
		out = append(out, sh)
	}
	return out
}

// runHooks runs hooks with the task's state at status; every hook runs,
// and the errors are returned together. It is called without the task's
// lock: with a reaper, each hook's exit comes from the reaper's goroutine,
// which may first be recording the anchor's exit, under that lock.
func (s *Tasks) runHooks(hooks []specs.Hook, rec *Record, annotations map[string]string, status specs.ContainerState, pid int) error {
	state, err := json.Marshal(&specs.State{
		Version: specs.Version, ID: rec.ID, Status: status, Pid: pid,
		Bundle: rec.Bundle, Annotations: annotations,
	})
	if err != nil {
		return fmt.Errorf("run hooks: %w", err)
	}
	var errs []error
	for i, h := range hooks {
		if err := runHook(s.opts.Reaper, h, state); err != nil {
			errs = append(errs, fmt.Errorf("hook %d (%s): %w", i, h.Path, err))
		}
	}
	return errors.Join(errs...)
}

// runHook runs one hook as the runtime spec says, the state on its stdin,
// killed once past its timeout. It is started through rp, the process's
// reaper or nil, and its exit comes back from it: a reaper running in this
// process (run's, the supervisor's) never takes it. Its output goes to a
// memory file, not a pipe (a daemon the hook leaves would hold that open),
// and into the error of a hook that fails.
func runHook(rp *reaper.Reaper, h specs.Hook, state []byte) error {
	stdin, err := reaper.MemFile("hook-state")
	if err != nil {
		return err
	}
	defer stdin.Close()
	if _, err := stdin.Write(state); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if _, err := stdin.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	out, err := reaper.MemFile("hook-output")
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := &exec.Cmd{Path: h.Path, Args: h.Args, Env: h.Env, Stdin: stdin, Stdout: out, Stderr: out}
	done := make(chan reaper.Reaped, 1)
	if err := rp.Start(cmd, func(r reaper.Reaped) { done <- r }); err != nil {
		return err
	}
	var timeout <-chan time.Time
	if h.Timeout != nil {
		t := time.NewTimer(time.Duration(*h.Timeout) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	var ex reaper.Reaped
	select {
	case ex = <-done:
	case <-timeout:
		_ = cmd.Process.Kill() // not reaped yet: the PID is still the hook's
		<-done
		return fmt.Errorf("ran past its timeout of %ds", *h.Timeout)
	}
	if ex.Code() == 0 {
		return nil
	}
	output, _ := reaper.ReadAll(out)
	return fmt.Errorf("exit status %d, output: %q", ex.Code(), bytes.TrimSpace(output))
}
