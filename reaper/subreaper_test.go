package reaper

import "testing"

// TestBecomeSubreaper: the test process becomes a child subreaper, and
// says so; a second call is fine.
func TestBecomeSubreaper(t *testing.T) {
	for range 2 {
		if err := BecomeSubreaper(); err != nil {
			t.Fatal(err)
		}
		if on, err := IsSubreaper(); err != nil || !on {
			t.Fatalf("IsSubreaper after BecomeSubreaper = %v, %v", on, err)
		}
	}
}
