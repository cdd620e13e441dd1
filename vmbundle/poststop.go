package vmbundle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
	"github.com/lf-edge/moor/devicemodel/xl"
)

// destroyTimeout bounds the poststop hook's xl destroy.
const destroyTimeout = 30 * time.Second

// Poststop undoes what a hypervisor task leaves on the host, given the
// annotations of its spec: it destroys the Xen domain of a task whose
// anchor could not (a domain that is gone already is fine) and removes
// the sockets, pidfile and run state the device model and the anchor
// left in the run directory. A task that is not a hypervisor task is
// left alone.
func Poststop(a map[string]string) error {
	dir := a[devicemodel.AnnotationRunDir]
	if dir == "" {
		return nil
	}
	if a[devicemodel.AnnotationHypervisor] == string(devicemodel.Xen) && a[devicemodel.AnnotationXL] != "" {
		ctx, cancel := context.WithTimeout(context.Background(), destroyTimeout)
		defer cancel()
		d := &xl.Driver{Run: xl.Exec(a[devicemodel.AnnotationXL]), Name: a[devicemodel.AnnotationName]}
		if err := d.Destroy(ctx); err != nil {
			return err
		}
	}
	stale := append(qemu.PathsIn(dir).Stale(), filepath.Join(dir, devicemodel.RunStateFile))
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
