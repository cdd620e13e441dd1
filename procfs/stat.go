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
)

// Root is where the host's procfs is mounted.
const Root = "/proc"

// ErrGone means the process does not exist: it has exited and been
// reaped, or never was.
var ErrGone = errors.New("process is gone")

// Stat is the part of /proc/<pid>/stat that moor uses.
type Stat struct {
	PID       int
	Comm      string
	State     byte // R, S, D, Z, X, ...
	PPID      int
	StartTime uint64 // clock ticks after boot (field 22)
}

// Exited reports whether the process has exited and waits only to be reaped.
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' || s.State == 'x' }

// ParseStat parses the contents of /proc/<pid>/stat. The command name may
// hold spaces and parentheses, so fields are counted from the last ')'.
func ParseStat(r io.Reader) (Stat, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return Stat{}, fmt.Errorf("read stat: %w", err)
	}
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return Stat{}, fmt.Errorf("parse stat: no command name in %q", truncate(b))
	}
	var s Stat
	if s.PID, err = strconv.Atoi(string(bytes.TrimSpace(b[:open]))); err != nil {
		return Stat{}, fmt.Errorf("parse stat pid: %w", err)
	}
	s.Comm = string(b[open+1 : closing])
	// Fields after the command start at field 3 (state).
	fields := strings.Fields(string(b[closing+1:]))
	const startTimeIdx = 22 - 3
	if len(fields) <= startTimeIdx {
		return Stat{}, fmt.Errorf("parse stat: %d fields after command, want more than %d", len(fields), startTimeIdx)
	}
	s.State = fields[0][0]
	if s.PPID, err = strconv.Atoi(fields[1]); err != nil {
		return Stat{}, fmt.Errorf("parse stat ppid: %w", err)
	}
	if s.StartTime, err = strconv.ParseUint(fields[startTimeIdx], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("parse stat start time: %w", err)
	}
	return s, nil
}

// ReadStat reads /proc/<pid>/stat under procRoot. A process that does not
// exist gives an error for which errors.Is(err, ErrGone) holds.
func ReadStat(procRoot string, pid int) (Stat, error) {
	return readPID(procRoot, pid, "stat", ParseStat)
}

// readPID parses /proc/<pid>/<name> under procRoot. A process that does
// not exist gives an error for which errors.Is(err, ErrGone) holds.
func readPID[T any](procRoot string, pid int, name string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), name))
	if errors.Is(err, os.ErrNotExist) {
		return zero, fmt.Errorf("read %s of pid %d: %w", name, pid, ErrGone)
	}
	if err != nil {
		return zero, fmt.Errorf("read %s of pid %d: %w", name, pid, err)
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return zero, fmt.Errorf("read %s of pid %d: %w", name, pid, err)
	}
	return v, nil
}

// Status is the part of /proc/<pid>/status that moor reports.
type Status struct {
	RSSKiB  uint64 // VmRSS
	Threads int
}

// ParseStatus parses the contents of /proc/<pid>/status.
func ParseStatus(r io.Reader) (Status, error) {
	var s Status
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "VmRSS":
			n, err := strconv.ParseUint(strings.TrimSuffix(val, " kB"), 10, 64)
			if err != nil {
				return Status{}, fmt.Errorf("parse VmRSS %q: %w", val, err)
			}
			s.RSSKiB = n
		case "Threads":
			n, err := strconv.Atoi(val)
			if err != nil {
				return Status{}, fmt.Errorf("parse Threads %q: %w", val, err)
			}
			s.Threads = n
		}
	}
	if err := sc.Err(); err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	return s, nil
}

// ReadStatus reads /proc/<pid>/status under procRoot.
func ReadStatus(procRoot string, pid int) (Status, error) {
	return readPID(procRoot, pid, "status", ParseStatus)
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
