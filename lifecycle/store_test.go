package lifecycle

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

func TestExitCodeUnknownJSON(t *testing.T) {
	for _, ex := range []Exit{{Code: CodeUnknown, Reason: ExitUnknown}, {Code: 137, Signal: "SIGKILL", Reason: ExitOOM, At: time.Unix(5, 0).UTC()}} {
		b, err := json.Marshal(ex)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Code == CodeUnknown && !strings.Contains(string(b), `"code":"unknown"`) {
			t.Fatalf("unknown code written as %s", b)
		}
		if ex.At.IsZero() && strings.Contains(string(b), `"at"`) {
			t.Fatalf("zero time written: %s", b)
		}
		var back Exit
		if err := json.Unmarshal(b, &back); err != nil || back != ex {
			t.Fatalf("round trip of %s: %+v, %v", b, back, err)
		}
	}
}

// TestClaim: a name is claimed once; what a removal cut short left (a
// directory without a record) does not keep it taken; Remove takes the
// record last and leaves no empty directories.
func TestClaim(t *testing.T) {
	st := Store{Root: t.TempDir()}
	rec := &Record{ID: "web", Namespace: "ns1", Status: Creating}
	if err := st.Claim(rec); err != nil {
		t.Fatal(err)
	}
	if err := st.Claim(rec); !errors.Is(err, ErrExist) {
		t.Fatalf("second claim: %v", err)
	}
	if got, err := st.Load("ns1", "web"); err != nil || got.Status != Creating {
		t.Fatalf("claimed record: %+v, %v", got, err)
	}
	if err := os.Remove(filepath.Join(st.Dir("ns1", "web"), recordFile)); err != nil {
		t.Fatal(err)
	}
	if err := st.Claim(rec); err != nil {
		t.Fatalf("claim over a removal's remains: %v", err)
	}
	if err := st.Remove("ns1", "web"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(st.Root); len(entries) != 0 {
		t.Fatalf("Remove left %v", entries)
	}
}

func TestParentsRegistry(t *testing.T) {
	st := Store{Root: t.TempDir()}
	add := func(ps ...string) {
		if err := st.updateParents(func(cur []string) []string { return append(cur, ps...) }); err != nil {
			t.Fatal(err)
		}
	}
	add("/a")
	add("/a/b")
	var got []string
	if err := st.updateParents(func(cur []string) []string { got = cur; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("registry %v, want /a and /a/b", got)
	}
	if _, err := os.Stat(filepath.Join(st.Root, parentsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an empty registry left its file: %v", err)
	}
}
