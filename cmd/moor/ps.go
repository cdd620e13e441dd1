package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/procfs"
)

var psCommand = cli.Command{
	Name:      "ps",
	Usage:     "list the processes of a task",
	ArgsUsage: "<task-id|anchor-pid>",
	Flags: []cli.Flag{
		cli.StringFlag{Name: "format, f", Value: "table", Usage: "table or json (a list of host PIDs)"},
	},
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		pids, err := tasks.Processes(ref)
		if err != nil {
			return err
		}
		switch f := ctx.String("format"); f {
		case "json":
			if pids == nil {
				pids = []int{}
			}
			return printJSON(pids)
		case "table":
			w := tabwriter.NewWriter(os.Stdout, 6, 1, 2, ' ', 0)
			fmt.Fprintln(w, "PID\tPPID\tSTAT\tCMD")
			for _, pid := range pids {
				st, err := procfs.ReadStat(procfs.Root, pid)
				if err != nil {
					continue // exited since the cgroup was read
				}
				fmt.Fprintf(w, "%d\t%d\t%c\t%s\n", pid, st.PPID, st.State, cmdline(pid, st.Comm))
			}
			return w.Flush()
		default:
			return fmt.Errorf("ps: --format %q: want table or json", f)
		}
	}),
}

// cmdline is the process's command line, or [comm] for a kernel-side one.
func cmdline(pid int, comm string) string {
	args, err := procfs.ReadCmdline(procfs.Root, pid)
	if err != nil || len(args) == 0 {
		return "[" + comm + "]"
	}
	return strings.Join(args, " ")
}
