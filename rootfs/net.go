package rootfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/nsutil"
)

// Entries of a task's scratch directory for its network.
const (
	scratchNetns   = "netns"        // the pinned network namespace
	scratchNetDevs = "netdevs.json" // which host interfaces went where
)

// netRecord is what Cleanup needs to bring interfaces back to the host.
type netRecord struct {
	Netns string `json:"netns"` // the namespace they were moved into
	// Devices maps each interface's host name to its name inside.
	Devices map[string]string `json:"devices"`
}

// prepareNet gives a task that moves host interfaces in a network
// namespace that outlives it (a new one pinned in scratchDir, unless it
// joins one by path) and records the interfaces before they move.
func prepareNet(spec *specs.Spec, scratchDir string) error {
	if spec.Linux == nil || len(spec.Linux.NetDevices) == 0 {
		return nil
	}
	spec.Linux.Namespaces = slices.Clone(spec.Linux.Namespaces)
	i := namespaceIndex(spec, specs.NetworkNamespace)
	if i < 0 {
		return errors.New("linux.netDevices: the task has no network namespace of its own")
	}
	rec := netRecord{Netns: spec.Linux.Namespaces[i].Path, Devices: map[string]string{}}
	for host, d := range spec.Linux.NetDevices {
		rec.Devices[host] = host
		if d.Name != "" {
			rec.Devices[host] = d.Name
		}
	}
	if rec.Netns == "" {
		rec.Netns = filepath.Join(scratchDir, scratchNetns)
		if err := nsutil.NewPinnedNet(rec.Netns); err != nil {
			return err
		}
		spec.Linux.Namespaces[i].Path = rec.Netns
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("record net devices: %w", err)
	}
	if err := os.WriteFile(filepath.Join(scratchDir, scratchNetDevs), b, 0o600); err != nil {
		return fmt.Errorf("record net devices: %w", err)
	}
	return nil
}

// returnNetDevices moves the recorded interfaces back to the host under
// their host names and unpins the namespace. Interfaces that never moved
// or are gone are skipped.
func returnNetDevices(scratchDir string) error {
	b, err := os.ReadFile(filepath.Join(scratchDir, scratchNetDevs))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("return net devices: %w", err)
	}
	var rec netRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("return net devices: %w", err)
	}
	var errs []error
	if _, err := os.Stat(rec.Netns); err == nil {
		for host, inside := range rec.Devices {
			if err := nsutil.ReturnLink(rec.Netns, inside, host); err != nil && !errors.Is(err, nsutil.ErrNoLink) {
				errs = append(errs, err)
			}
		}
	}
	pinned := filepath.Join(scratchDir, scratchNetns)
	if rec.Netns == pinned {
		if err := nsutil.UnpinNet(pinned); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("return net devices: %w", err)
	}
	return nil
}
