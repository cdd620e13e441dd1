package vmm

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/reaper"
)

// The run state names the signal that killed the device model as the
// kernel names it.
func TestDescribe(t *testing.T) {
	for status, want := range map[unix.WaitStatus]string{
		unix.WaitStatus(unix.SIGKILL): "qemu killed by SIGKILL",
		unix.WaitStatus(unix.SIGSEGV): "qemu killed by SIGSEGV",
		unix.WaitStatus(3 << 8):       "qemu exited with status 3",
	} {
		if got := describe("qemu", reaper.Reaped{PID: 7, Status: status}); got != want {
			t.Errorf("describe(%#x) = %q, want %q", int(status), got, want)
		}
	}
}
