package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/nsutil"
	"github.com/lf-edge/moor/supervisor"
)

// clockTicks is USER_HZ, the unit of start times in /proc/<pid>/stat: 100
// on every Linux architecture.
const clockTicks = 100

var infoCommand = cli.Command{
	Name:      "info",
	Usage:     "print a task's full OCI spec and what /proc shows of its anchor, as JSON",
	ArgsUsage: "<task-id|anchor-pid>",
	Action: taskAction(func(ctx *cli.Context, sup *supervisor.Supervisor, ref string) error {
		info, err := taskInfo(sup, ref)
		if err != nil {
			return fmt.Errorf("info: %w", err)
		}
		return printJSON(info)
	}),
}

// info is what `moor info` prints.
type info struct {
	*supervisor.State
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

func taskInfo(sup *supervisor.Supervisor, ref string) (*info, error) {
	st, err := sup.State(ref)
	if err != nil {
		return nil, err
	}
	spec, err := sup.Store().LoadSpec(st.Namespace, st.ID)
	if err != nil {
		return nil, err
	}
	out := &info{State: st, Spec: spec}
	if st.Status == supervisor.Stopped || st.PID == 0 {
		return out, nil
	}
	a, err := readAnchor(anchor.ProcRoot, st.PID)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", st.ID, err)
	}
	a.CgroupPath = st.CgroupPath
	out.Anchor = a
	return out, nil
}

// readAnchor reads what /proc shows of process pid.
func readAnchor(procRoot string, pid int) (*anchorInfo, error) {
	stat, err := anchor.ReadStat(procRoot, pid)
	if err != nil {
		return nil, err
	}
	status, err := anchor.ReadStatus(procRoot, pid)
	if err != nil {
		return nil, err
	}
	ns, err := nsutil.Namespaces(procRoot, pid)
	if err != nil {
		return nil, err
	}
	cg, err := cgroups.ParseCgroupFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil, fmt.Errorf("read cgroups of pid %d: %w", pid, err)
	}
	a := &anchorInfo{
		PID: pid, Comm: stat.Comm, State: string(stat.State), PPID: stat.PPID,
		StartTimeTicks: stat.StartTime, RSSKiB: status.RSSKiB, Threads: status.Threads,
		Namespaces: ns, Cgroups: cg,
	}
	if boot, err := bootTime(procRoot); err == nil {
		t := boot.Add(time.Duration(stat.StartTime) * time.Second / clockTicks).UTC()
		a.StartedAt = &t
	}
	if root, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "root")); err == nil {
		a.Root = root
	}
	return a, nil
}

// bootTime reads the btime line of /proc/stat.
func bootTime(procRoot string) (time.Time, error) {
	f, err := os.Open(filepath.Join(procRoot, "stat"))
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("parse btime: %w", err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("read boot time: no btime in %s/stat", procRoot)
}
