package devicemodel

import "testing"

// A run state its anchor could not finish reads as crashed once the
// anchor is gone; a finished one keeps its own word.
func TestAnchorEnded(t *testing.T) {
	st := RunState{State: GuestRunning, Hypervisor: TCG}
	st.AnchorEnded("SIGKILL")
	if st.State != GuestCrashed || st.End != EndCrashed || st.Reason != "anchor killed by SIGKILL before the guest ended" {
		t.Errorf("unfinished run state after the anchor was killed: %+v", st)
	}
	st = RunState{State: GuestStarting}
	st.AnchorEnded("")
	if st.End != EndCrashed || st.Reason != "anchor ended before the guest" {
		t.Errorf("unfinished run state after an unseen end: %+v", st)
	}
	done := RunState{State: GuestShutdown, End: EndForced, Reason: "guest ignored the powerdown for 10s"}
	st = done
	st.AnchorEnded("SIGKILL")
	if st != done {
		t.Errorf("a finished run state changed: %+v", st)
	}
}
