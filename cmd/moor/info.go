package main

import (
	"fmt"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/nsutil"
	"github.com/lf-edge/moor/procfs"
)

var infoCommand = cli.Command{
	Name:      "info",
	Usage:     "print a task's full OCI spec and what /proc shows of its anchor, as JSON",
	ArgsUsage: "<task-id|anchor-pid>",
	Action: taskAction(func(ctx *cli.Context, tasks *lifecycle.Tasks, ref string) error {
		info, err := taskInfo(tasks, ref)
		if err != nil {
			return fmt.Errorf("info: %w", err)
		}
		return printJSON(info)
	}),
}

// info is what `moor info` prints.
type info struct {
	*lifecycle.State
	Spec   *specs.Spec `json:"spec"`
	Anchor *anchorInfo `json:"anchor,omitempty"` // absent once the task stopped
}

// anchorInfo is what /proc shows of a live anchor.
type anchorInfo struct {
	PID            int               `json:"pid"`
	Comm           string            `json:"comm"`
	State          string            `json:"state"`
	PPID           int               `json:"ppid"`
	StartTimeTicks uint64            `json:"startTimeTicks"`
	StartedAt      *time.Time        `json:"startedAt,omitempty"`
	RSSKiB         uint64            `json:"rssKiB"`
	Threads        int               `json:"threads"`
	Namespaces     map[string]uint64 `json:"namespaces"`     // kind → inode number
	Cgroups        map[string]string `json:"cgroups"`        // controllers → path, as /proc/<pid>/cgroup lists them
	CgroupPath     string            `json:"cgroupPath"`     // the task's cgroup, as moor made it
	Root           string            `json:"root,omitempty"` // /proc/<pid>/root as the host sees it
}

func taskInfo(tasks *lifecycle.Tasks, ref string) (*info, error) {
	st, err := tasks.State(ref)
	if err != nil {
		return nil, err
	}
	spec, err := tasks.Store().LoadSpec(st.Namespace, st.ID)
	if err != nil {
		return nil, err
	}
	out := &info{State: st, Spec: spec}
	if st.Status == lifecycle.Stopped || st.PID == 0 {
		return out, nil
	}
	a, err := readAnchor(procfs.Root, st.PID)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", st.ID, err)
	}
	a.CgroupPath = st.CgroupPath
	out.Anchor = a
	return out, nil
}

// readAnchor reads what /proc shows of process pid.
func readAnchor(procRoot string, pid int) (*anchorInfo, error) {
	p, err := procfs.ReadProcess(procRoot, pid)
	if err != nil {
		return nil, err
	}
	ns, err := nsutil.Namespaces(procRoot, pid)
	if err != nil {
		return nil, err
	}
	a := &anchorInfo{
		PID: pid, Comm: p.Comm, State: string(p.State), PPID: p.PPID,
		StartTimeTicks: p.StartTime, RSSKiB: p.RSSKiB, Threads: p.Threads,
		Namespaces: ns, Cgroups: p.Cgroups, Root: p.Root,
	}
	if !p.StartedAt.IsZero() {
		a.StartedAt = &p.StartedAt
	}
	return a, nil
}
