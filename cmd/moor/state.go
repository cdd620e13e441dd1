package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/supervisor"
)

var stateCommand = cli.Command{
	Name:      "state",
	Usage:     "print a task's state as OCI state JSON",
	ArgsUsage: "<task-id|anchor-pid>",
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		st, err := tasks.State(ref)
		if err != nil {
			return err
		}
		return printJSON(st)
	}),
}

var listCommand = cli.Command{
	Name:  "list",
	Usage: "list the tasks of the namespace",
	Flags: []cli.Flag{
		cli.StringFlag{Name: "format, f", Value: "table", Usage: "table or json"},
		cli.BoolFlag{Name: "quiet, q", Usage: "print task IDs only"},
	},
	Action: func(ctx *cli.Context) error {
		if ctx.NArg() != 0 {
			return fmt.Errorf("list: takes no arguments")
		}
		tasks, err := newTasks(ctx, nil)
		if err != nil {
			return err
		}
		states, err := tasks.List()
		if err != nil {
			return err
		}
		states = append(states, untaskedServices(tasks.Store().Root, ctx.GlobalString("namespace"), states)...)
		if ctx.Bool("quiet") {
			for _, st := range states {
				fmt.Println(st.ID)
			}
			return nil
		}
		switch f := ctx.String("format"); f {
		case "json":
			if states == nil {
				fmt.Println("[]")
				return nil
			}
			return printJSON(states)
		case "table":
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprintln(w, "ID\tPID\tSTATUS\tRESTARTS\tEXIT\tBUNDLE\tCREATED")
			for _, st := range states {
				exit := st.Reason
				if st.Exit != nil {
					exit = fmt.Sprintf("%d (%s)", st.Exit.Code, st.Exit.Reason)
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", st.ID, st.PID, st.Status, st.Restarts, exit,
					st.Bundle, st.Created.Format(time.RFC3339Nano))
			}
			return w.Flush()
		default:
			return fmt.Errorf("list: --format %q: want table or json", f)
		}
	},
}

// untaskedServices are the services a supervisor of the namespace keeps
// with no task because their create failed (its journal): list shows each
// as stopped, with the error as its reason.
func untaskedServices(root, namespace string, have []*lifecycle.State) []*lifecycle.State {
	j, err := supervisor.ReadJournal(root, namespace)
	if err != nil {
		return nil
	}
	var out []*lifecycle.State
	for id, u := range j.Untasked {
		if u.Error == "" || slices.ContainsFunc(have, func(st *lifecycle.State) bool { return st.ID == id }) {
			continue
		}
		out = append(out, &lifecycle.State{OCIVersion: specs.Version, ID: id, Namespace: namespace, Status: lifecycle.Stopped,
			Restarts: u.Restarts, Created: u.At, Reason: "create failed: " + u.Error})
	}
	slices.SortFunc(out, func(a, b *lifecycle.State) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
