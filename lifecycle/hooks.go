package lifecycle

import (
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
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
// and the errors are returned together.
func runHooks(hooks []specs.Hook, rec *Record, annotations map[string]string, status specs.ContainerState, pid int) error {
	state := &specs.State{
		Version: specs.Version, ID: rec.ID, Status: status, Pid: pid,
		Bundle: rec.Bundle, Annotations: annotations,
	}
	var errs []error
	for i, h := range hooks {
		cmd := &configs.Command{Path: h.Path, Args: h.Args, Env: h.Env}
		if h.Timeout != nil {
			d := time.Duration(*h.Timeout) * time.Second
			cmd.Timeout = &d
		}
		if err := configs.NewCommandHook(cmd).Run(state); err != nil {
			errs = append(errs, fmt.Errorf("hook %d (%s): %w", i, h.Path, err))
		}
	}
	return errors.Join(errs...)
}
