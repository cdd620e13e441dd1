package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// OOMKills returns how many processes the kernel's OOM killer has killed in
// the cgroup whose memory directory is dir: the oom_kill count of
// memory.events (v2) or memory.oom_control (v1).
func OOMKills(dir string) (uint64, error) {
	for _, name := range []string{"memory.events", "memory.oom_control"} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read oom kills: %w", err)
		}
		n, err := parseKeyed(f, "oom_kill")
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("read oom kills from %s: %w", name, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("read oom kills in %s: %w", dir, os.ErrNotExist)
}

// parseKeyed reads a "key value" per line cgroup file and returns key's
// value, or 0 when the kernel does not report it.
func parseKeyed(r io.Reader, key string) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s %q: %w", key, v, err)
		}
		return n, nil
	}
	return 0, sc.Err()
}
