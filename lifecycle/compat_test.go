package lifecycle

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
)

func TestFitLibcontainer(t *testing.T) {
	statxRule := func(sc *configs.Seccomp) *configs.Syscall {
		for _, s := range sc.Syscalls {
			if s.Name == "statx" {
				return s
			}
		}
		return nil
	}
	deny := func() *configs.Seccomp {
		return &configs.Seccomp{DefaultAction: configs.Errno, Syscalls: []*configs.Syscall{{Name: "read", Action: configs.Allow}}}
	}
	fifo := &config.Device{Rule: config.Rule{Type: config.FifoDevice, Major: 8, Minor: 666}, Path: "/dev/f"}
	char := &config.Device{Rule: config.Rule{Type: config.CharDevice, Major: 1, Minor: 3}, Path: "/dev/null"}
	cfg := &configs.Config{
		Seccomp: deny(),
		Devices: []*config.Device{fifo, char},
		Mounts: []*configs.Mount{
			{Source: "/a", Destination: "/b", Device: "bind", Flags: 0x1000, Data: "mode=755"},
			{Source: "tmpfs", Destination: "/t", Device: "tmpfs", Data: "size=1k"},
		},
	}
	var log bytes.Buffer
	fitLibcontainer(cfg, slog.New(slog.NewJSONHandler(&log, nil)))
	if r := statxRule(cfg.Seccomp); r == nil || r.Action != configs.Allow {
		t.Fatalf("statx not allowed in a deny-by-default filter: %+v", cfg.Seccomp.Syscalls)
	}
	if warned := warnings(t, &log); !slices.Contains(warned, "statx") || !slices.Contains(warned, "") {
		t.Fatalf("want a warning naming statx and one for the bind mount's options, got %q", warned)
	}
	if fifo.Major != 0 || fifo.Minor != 0 || char.Major != 1 || char.Minor != 3 {
		t.Fatalf("devices: fifo %d:%d char %d:%d", fifo.Major, fifo.Minor, char.Major, char.Minor)
	}
	if cfg.Mounts[0].Data != "" || cfg.Mounts[1].Data != "size=1k" {
		t.Fatalf("mount data: bind %q tmpfs %q", cfg.Mounts[0].Data, cfg.Mounts[1].Data)
	}

	blocked := deny()
	blocked.Syscalls = append(blocked.Syscalls, &configs.Syscall{Name: "statx", Action: configs.Errno})
	nnp := &configs.Config{Seccomp: deny(), NoNewPrivileges: true}
	mine := &configs.Config{Seccomp: blocked}
	fitLibcontainer(nnp, slog.New(slog.NewJSONHandler(&log, nil)))
	fitLibcontainer(mine, slog.New(slog.NewJSONHandler(&log, nil)))
	if warned := warnings(t, &log); len(warned) != 0 {
		t.Fatalf("warned of a change not made: %q", warned)
	}
	if statxRule(nnp.Seccomp) != nil {
		t.Fatal("statx added where no_new_privs loads the filter after the descriptors are closed")
	}
	if r := statxRule(mine.Seccomp); r.Action != configs.Errno || len(mine.Seccomp.Syscalls) != 2 {
		t.Fatal("a filter that names statx itself was changed")
	}
}

// warnings reads the JSON log lines of warnings in log, and gives the
// syscall each one says was added ("" for other changes).
func warnings(t *testing.T, log *bytes.Buffer) []string {
	t.Helper()
	var out []string
	dec := json.NewDecoder(log)
	for dec.More() {
		var line struct{ Level, Added string }
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		if line.Level == "WARN" {
			out = append(out, line.Added)
		}
	}
	return out
}
