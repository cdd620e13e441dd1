package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of start times in /proc/<pid>/stat: 100
// on every Linux architecture.
const ClockTicks = 100

// Process is what /proc shows of a process, for a report.
type Process struct {
	Stat
	Status
	// StartedAt is when the process started; zero when /proc/stat has
	// no boot time.
	StartedAt time.Time
	// Cgroups maps each controller (the empty string for cgroup v2) to
	// the process's cgroup path, as /proc/<pid>/cgroup lists them.
	Cgroups map[string]string
	// Root is the target of /proc/<pid>/root as the host sees it; empty
	// when it cannot be read.
	Root string
}

// ReadProcess reads what /proc under procRoot shows of process pid: its
// stat, status, cgroups, start time and root. A process that does not
// exist gives an error for which errors.Is(err, ErrGone) holds.
func ReadProcess(procRoot string, pid int) (*Process, error) {
	stat, err := ReadStat(procRoot, pid)
	if err != nil {
		return nil, err
	}
	status, err := ReadStatus(procRoot, pid)
	if err != nil {
		return nil, err
	}
	cg, err := ReadCgroups(procRoot, pid)
	if err != nil {
		return nil, err
	}
	p := &Process{Stat: stat, Status: status, Cgroups: cg}
	if boot, err := ReadBootTime(procRoot); err == nil {
		p.StartedAt = boot.Add(time.Duration(stat.StartTime) * time.Second / ClockTicks).UTC()
	}
	if root, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "root")); err == nil {
		p.Root = root
	}
	return p, nil
}

// ParseCgroups parses the contents of /proc/<pid>/cgroup
// ("hierarchy-ID:controller,...:path" a line) into controller → path; a
// cgroup v2 line has the empty controller.
func ParseCgroups(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) < 3 {
			return nil, fmt.Errorf("parse cgroups: %q: want hierarchy:controllers:path", sc.Text())
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read cgroups: %w", err)
	}
	return out, nil
}

// ReadCgroups reads /proc/<pid>/cgroup under procRoot.
func ReadCgroups(procRoot string, pid int) (map[string]string, error) {
	return readPID(procRoot, pid, "cgroup", ParseCgroups)
}

// ParseBootTime reads the btime line of the contents of /proc/stat.
func ParseBootTime(r io.Reader) (time.Time, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("parse btime: %w", err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	if err := sc.Err(); err != nil {
		return time.Time{}, fmt.Errorf("read boot time: %w", err)
	}
	return time.Time{}, errors.New("read boot time: no btime line")
}

// ReadBootTime reads the boot time from /proc/stat under procRoot.
func ReadBootTime(procRoot string) (time.Time, error) {
	f, err := os.Open(filepath.Join(procRoot, "stat"))
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	return ParseBootTime(f)
}

// ReadCmdline reads the arguments of process pid from /proc/<pid>/cmdline
// under procRoot; none for a kernel thread or a zombie.
func ReadCmdline(procRoot string, pid int) ([]string, error) {
	b, err := readPID(procRoot, pid, "cmdline", io.ReadAll)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}
