package devicemodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lf-edge/moor/atomicfile"
)

// GuestState is the guest's run state as the anchor last saw it.
type GuestState string

const (
	GuestStarting GuestState = "starting" // the device model is coming up; the guest has not run
	GuestRunning  GuestState = "running"
	GuestPaused   GuestState = "paused"
	GuestShutdown GuestState = "shutdown" // the guest powered off, or was stopped
	GuestCrashed  GuestState = "crashed"  // the guest or its device model failed
)

// End says how a hypervisor task ended; empty while it runs.
type End string

const (
	EndPoweroff End = "poweroff" // the guest powered off (by itself or on ACPI powerdown)
	EndForced   End = "forced"   // the guest ignored the powerdown; the anchor stopped it hard
	EndCrashed  End = "crashed"  // the device model died, or the guest crashed
)

// The anchor's exit codes, one per End; any other code is the anchor's own
// failure.
const (
	ExitPoweroff = 0
	ExitFailure  = 1 // the anchor could not run the device model
	ExitCrashed  = 2
	ExitForced   = 3
)

// ExitCode is the anchor's exit code for an end.
func ExitCode(e End) int {
	switch e {
	case EndPoweroff:
		return ExitPoweroff
	case EndForced:
		return ExitForced
	case EndCrashed:
		return ExitCrashed
	}
	return ExitFailure
}

// RunState is what the anchor publishes in RunStateFile of the task's run
// directory, rewritten atomically on every change.
type RunState struct {
	State      GuestState `json:"state"`
	Reason     string     `json:"reason,omitempty"` // e.g. guest-shutdown, "qemu killed by SIGSEGV"
	End        End        `json:"end,omitempty"`
	Hypervisor Hypervisor `json:"hypervisor"`
	// DeviceModelPID is qemu's (or xl's) PID in the task's PID namespace.
	DeviceModelPID int `json:"deviceModelPid,omitempty"`
	// AnchorRSSKiB is the anchor's own resident memory, part of the tax.
	AnchorRSSKiB int64 `json:"anchorRssKiB,omitempty"`
	// AppPID is the app's PID in the guest, once its guest init started
	// it (a container app VM).
	AppPID int `json:"appPid,omitempty"`
	// AppExit is how the app ended, once its guest init reported it.
	AppExit *AppExit  `json:"appExit,omitempty"`
	Updated time.Time `json:"updated"`
}

// AnchorEnded finishes the run state of a task whose anchor has ended:
// one the anchor left unfinished (it was killed, by signal when known,
// before it could say how the guest ended) reads as crashed, the guest
// having gone with its anchor. A finished one is left as it is.
func (st *RunState) AnchorEnded(signal string) {
	if st.End != "" {
		return
	}
	st.State, st.End, st.Reason = GuestCrashed, EndCrashed, "anchor ended before the guest"
	if signal != "" {
		st.Reason = "anchor killed by " + signal + " before the guest ended"
	}
}

// RunStateFile is the run state's file name in the run directory.
const RunStateFile = "runstate.json"

// Annotations a hypervisor task's spec carries, for the supervisor and
// the poststop hook.
const (
	AnnotationName       = "moor.vm.name"       // the guest's name (qemu -name, xl domain name)
	AnnotationHypervisor = "moor.vm.hypervisor" // kvm, tcg or xen
	AnnotationRunDir     = "moor.vm.run-dir"    // the run directory on the host
	AnnotationXL         = "moor.vm.xl"         // xl on the host, for the domain's destroy at delete
)

// WriteRunState replaces the run-state file of dir atomically.
func WriteRunState(dir string, st RunState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("write run state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, RunStateFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write run state: %w", err)
	}
	return nil
}

// ErrNotVM means the annotations are not a hypervisor task's.
var ErrNotVM = errors.New("not a hypervisor task")

// ReadRunState reads the guest's run state of a hypervisor task, given the
// annotations of its spec. It returns ErrNotVM for other tasks and an
// error wrapping os.ErrNotExist before the anchor first wrote it.
func ReadRunState(annotations map[string]string) (*RunState, error) {
	dir := annotations[AnnotationRunDir]
	if dir == "" {
		return nil, ErrNotVM
	}
	b, err := os.ReadFile(filepath.Join(dir, RunStateFile))
	if err != nil {
		return nil, fmt.Errorf("read run state: %w", err)
	}
	var st RunState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read run state %s: %w", dir, err)
	}
	return &st, nil
}
