package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lf-edge/moor/devicemodel"
)

// anchorResult is a hypervisor task's anchor, measured with its guest
// paused.
type anchorResult struct {
	held
	QemuRSSKiB int `json:"qemuRssKiB"`
	// Binary is the host file the anchor runs: moor-anchor, or moor
	// itself when moor vm spec found no lean anchor.
	Binary string `json:"binary"`
}

// benchAnchor creates and starts a hypervisor task (qemu under TCG, 128
// MiB, one vCPU, no disk), pauses its guest, and measures the anchor.
func benchAnchor(ctx context.Context, moor *ociRuntime, dir string, verbose bool) (res anchorResult, err error) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return res, fmt.Errorf("find qemu (apt-get install qemu-system-x86): %w", err)
	}
	const id = "vm-anchor"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("make vm bundle: %w", err)
	}
	desc := filepath.Join(dir, "vm-description.json")
	b, _ := json.Marshal(map[string]any{"name": id, "hypervisor": "tcg", "memoryMiB": 128, "vcpus": 1})
	if err := os.WriteFile(desc, b, 0o644); err != nil {
		return res, fmt.Errorf("write vm description: %w", err)
	}
	if _, err := moor.cmd(ctx, "vm", "spec", "--vm", desc, "--host-root", "--bundle", dir,
		"--cgroups-path", cgroupParent+"/"+id); err != nil {
		return res, err
	}
	if _, err := moor.cmd(ctx, "create", "--bundle", dir, id); err != nil {
		return res, err
	}
	defer func() {
		if _, derr := moor.cmd(context.WithoutCancel(ctx), "delete", "--force", id); derr != nil && err == nil {
			err = derr
		}
	}()
	if _, err := moor.cmd(ctx, "start", id); err != nil {
		return res, err
	}
	runDir := filepath.Join(dir, "vm")
	if err := waitGuest(ctx, runDir, devicemodel.GuestRunning); err != nil {
		return res, err
	}
	if _, err := moor.cmd(ctx, "kill", id, "USR1"); err != nil {
		return res, err
	}
	if err := waitGuest(ctx, runDir, devicemodel.GuestPaused); err != nil {
		return res, err
	}
	time.Sleep(time.Second) // let the paused guest settle
	pid, err := anchorPID(ctx, moor, id)
	if err != nil {
		return res, err
	}
	if res.held, err = measure(pid); err != nil {
		return res, err
	}
	if res.Binary, err = anchorBinary(dir, pid); err != nil {
		return res, err
	}
	phase("the anchor (pid %d) runs %s", pid, res.Binary)
	if verbose {
		printMappings(pid)
	}
	if q, err := firstChild(pid); err == nil { // qemu, the device model
		if h, err := measure(q); err == nil {
			res.QemuRSSKiB = h.RSSKiB
		}
	}
	return res, nil
}

// waitGuest polls the anchor's run state until the guest is in want.
func waitGuest(ctx context.Context, runDir string, want devicemodel.GuestState) error {
	deadline := time.Now().Add(60 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		st, err := devicemodel.ReadRunState(map[string]string{devicemodel.AnnotationRunDir: runDir})
		if err == nil && st.State == want {
			return nil
		}
		if err == nil && (st.State == devicemodel.GuestShutdown || st.State == devicemodel.GuestCrashed) {
			return fmt.Errorf("guest ended while waiting for %s: %s", want, st.Reason)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("guest not %s after 60s", want)
		}
		time.Sleep(delay)
	}
}

// anchorPID reads the anchor's host PID from `moor state`.
func anchorPID(ctx context.Context, moor *ociRuntime, id string) (int, error) {
	out, err := moor.output(ctx, "state", id)
	if err != nil {
		return 0, err
	}
	var st struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.PID <= 0 {
		return 0, fmt.Errorf("decode moor state %s: %q: %v", id, out, err)
	}
	return st.PID, nil
}

// firstChild finds a child of pid, whichever of its threads forked it.
func firstChild(pid int) (int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("read threads of %d: %w", pid, err)
	}
	for _, tk := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, tk.Name()))
		if f := strings.Fields(string(b)); len(f) > 0 {
			return strconv.Atoi(f[0])
		}
	}
	return 0, fmt.Errorf("process %d has no child", pid)
}

// anchorBinary is the host file the anchor process runs: the source of
// the bundle's bind mount at the process's path, checked against the
// process's executable.
func anchorBinary(bundle string, pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("read vm spec: %w", err)
	}
	var spec struct {
		Process struct {
			Args []string `json:"args"`
		} `json:"process"`
		Mounts []struct {
			Destination string `json:"destination"`
			Source      string `json:"source"`
		} `json:"mounts"`
	}
	if err := json.Unmarshal(b, &spec); err != nil || len(spec.Process.Args) == 0 {
		return "", fmt.Errorf("decode vm spec: %v", err)
	}
	exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return "", fmt.Errorf("find the anchor's binary: %w", err)
	}
	for _, m := range spec.Mounts {
		if m.Destination != spec.Process.Args[0] {
			continue
		}
		if src, err := os.Stat(m.Source); err == nil && os.SameFile(src, exe) {
			return fmt.Sprintf("%s (%.1f MiB)", m.Source, float64(src.Size())/(1<<20)), nil
		}
	}
	return "", fmt.Errorf("the anchor %d runs no binary its spec bind-mounts at %s", pid, spec.Process.Args[0])
}

// printMappings prints a process's resident memory by mapping, largest
// first.
func printMappings(pid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return
	}
	var lines []string
	var head string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			head = line
		case len(f) >= 2 && f[0] == "Rss:" && f[1] != "0":
			lines = append(lines, fmt.Sprintf("%8s KiB  %s", f[1], head))
		}
	}
	slices.SortFunc(lines, func(a, b string) int {
		x, _ := strconv.Atoi(strings.Fields(a)[0])
		y, _ := strconv.Atoi(strings.Fields(b)[0])
		return y - x
	})
	fmt.Fprintf(os.Stderr, "anchor %d resident memory by mapping:\n  %s\n", pid, strings.Join(lines, "\n  "))
}
