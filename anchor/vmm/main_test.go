package vmm

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lf-edge/moor/devicemodel"
)

// Main prints its usage on -h, refuses arguments and fails on a run
// directory without a VM description, each before it runs anything.
func TestMainArgs(t *testing.T) {
	var stderr bytes.Buffer
	if _, err := Main(context.Background(), "moor-anchor", []string{"-h"}, &stderr, false); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if !strings.Contains(stderr.String(), "usage: moor-anchor [flags]") || !strings.Contains(stderr.String(), "-grace") {
		t.Errorf("usage %q", stderr.String())
	}
	stderr.Reset()
	if _, err := Main(context.Background(), "moor-anchor", []string{"extra"}, &stderr, false); err == nil ||
		!strings.Contains(stderr.String(), "takes no arguments") {
		t.Errorf("an argument: %v, %q", err, stderr.String())
	}
	stderr.Reset()
	if _, err := Main(context.Background(), "moor-anchor", []string{"--dir", t.TempDir(), "--debug"}, &stderr, false); !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(stderr.String(), "anchor failed") {
		t.Errorf("no vm.json: %v, %q", err, stderr.String())
	}
}

// runDir runs the VM its run directory describes, and refuses an invalid
// description.
func TestRunDir(t *testing.T) {
	r := newRig(t, nil)
	vmFile := filepath.Join(r.dir, devicemodel.VMFile)
	if err := os.WriteFile(vmFile, []byte(`{"name": "guest", "bogus": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runDir(context.Background(), r.opts); !errors.Is(err, devicemodel.ErrInvalidVM) {
		t.Errorf("an invalid description: %v", err)
	}
	vm := `{"name": "guest", "hypervisor": "tcg", "memoryMiB": 64, "kernel": "/boot/vmlinuz"}`
	if err := os.WriteFile(vmFile, []byte(vm), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		out, err := runDir(context.Background(), r.opts)
		r.done <- result{out, err}
	}()
	r.started()
	r.send(event{gone: true, reason: "qemu killed by SIGKILL"})
	r.ended(devicemodel.EndCrashed, devicemodel.GuestCrashed, "qemu killed by SIGKILL")
}
