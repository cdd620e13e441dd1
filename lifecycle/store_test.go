package lifecycle

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/lf-edge/moor/anchor"
)

func TestStoreRoundTrip(t *testing.T) {
	st := Store{Root: t.TempDir()}
	rec := &Record{ID: "web", Namespace: "ns1", Status: Running, Anchor: anchor.Identity{PID: 9, StartTime: 3},
		Created: time.Unix(100, 0).UTC(), Exit: &Exit{Code: 137, Signal: "SIGKILL", Reason: ExitOOM}}
	if err := os.MkdirAll(st.Dir("ns1", "web"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(rec); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load("ns1", "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != Running || got.Anchor != rec.Anchor || got.Exit.Reason != ExitOOM || !got.Created.Equal(rec.Created) {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := st.Load("ns1", "other"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing task: %v", err)
	}
	if _, err := st.Load("ns1", "../escape"); err == nil {
		t.Fatal("an id with a slash was accepted")
	}
	ids, err := st.IDs("ns1")
	if err != nil || len(ids) != 1 || ids[0] != "web" {
		t.Fatalf("IDs: %v %v", ids, err)
	}
	if _, err := st.Update("ns1", "web", func(r *Record) error { r.Restarts = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Load("ns1", "web"); got.Restarts != 2 {
		t.Fatalf("update lost: %+v", got)
	}
	if err := st.Remove("ns1", "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.NamespaceDir("ns1")); !os.IsNotExist(err) {
		t.Fatal("empty namespace dir left")
	}
}

func TestTransition(t *testing.T) {
	if _, err := transition(Created, Running); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]Status{{Stopped, Running}, {Created, Paused}, {Running, Created}} {
		if _, err := transition(bad[0], bad[1]); !errors.Is(err, ErrWrongStatus) {
			t.Errorf("%s → %s allowed", bad[0], bad[1])
		}
	}
	if err := requireStatus("start", "x", Running, Created); !errors.Is(err, ErrWrongStatus) {
		t.Fatalf("requireStatus: %v", err)
	}
}
