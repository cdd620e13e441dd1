package lifecycle

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	for ref, want := range map[string]Ref{
		"web":     {ID: "web"},
		"123":     {ID: "123", PID: 123},
		"4194304": {ID: "4194304", PID: MaxPID},
		"4194305": {ID: "4194305"},
		"0":       {ID: "0"},
		"05":      {ID: "05"},
		"+5":      {ID: "+5"},
		"-1":      {ID: "-1"},
		"1e3":     {ID: "1e3"},
	} {
		if got, err := ParseRef(ref); err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", ref, got, err, want)
		}
	}
	for _, ref := range []string{"", ".", "..", "a/b", "../x", " 5", "5 ", "a\x00b", "é"} {
		if got, err := ParseRef(ref); !errors.Is(err, ErrNotExist) {
			t.Errorf("ParseRef(%q) = %+v, %v; want ErrNotExist", ref, got, err)
		}
	}
}

// FuzzResolveRef: a reference is an ID only when CheckID takes it, and
// such an ID is one path element; a PID only in /proc's own spelling; the
// store is asked only about those, a name wins over a PID, and what finds
// nothing is ErrNotExist. The world is the names (one a line) of existing
// tasks and one live anchor, pid → anchorID.
func FuzzResolveRef(f *testing.F) {
	f.Fuzz(func(t *testing.T, ref, names string, pid int, anchorID string) {
		r, err := ParseRef(ref)
		checkParsedRef(t, ref, r, err)
		tasks := map[string]bool{}
		for _, n := range strings.Split(names, "\n") {
			tasks[n] = true
		}
		askedAnchor := false
		exists := func(id string) (bool, error) {
			if id != ref || CheckID(id) != nil {
				t.Fatalf("ResolveRef(%q) asked whether task %q exists", ref, id)
			}
			return tasks[id], nil
		}
		anchorOf := func(p int) (string, error) {
			if p < 1 || p > MaxPID || strconv.Itoa(p) != ref {
				t.Fatalf("ResolveRef(%q) asked for the anchor of pid %d", ref, p)
			}
			askedAnchor = true
			if p == pid {
				return anchorID, nil
			}
			return "", nil
		}
		id, err := ResolveRef(ref, exists, anchorOf)
		named := r.ID != "" && tasks[r.ID]
		switch {
		case named && (id != ref || err != nil || askedAnchor):
			t.Fatalf("ResolveRef(%q) = %q, %v (anchor asked: %v); want the task of that name", ref, id, err, askedAnchor)
		case !named && r.PID != 0 && r.PID == pid && anchorID != "":
			if id != anchorID || err != nil {
				t.Fatalf("ResolveRef(%q) = %q, %v; want %q, whose anchor has that pid", ref, id, err, anchorID)
			}
		case !named && !errors.Is(err, ErrNotExist):
			t.Fatalf("ResolveRef(%q) = %q, %v; want ErrNotExist", ref, id, err)
		}
	})
}

func checkParsedRef(t *testing.T, ref string, r Ref, err error) {
	t.Helper()
	if valid := CheckID(ref) == nil; valid != (r.ID != "") || (valid && r.ID != ref) {
		t.Fatalf("ParseRef(%q).ID = %q, CheckID says %v", ref, r.ID, CheckID(ref))
	}
	if r.ID != "" {
		const root = "/state/ns"
		p := filepath.Join(root, r.ID)
		if strings.ContainsAny(r.ID, "/\x00") || filepath.Dir(p) != root || filepath.Base(p) != r.ID {
			t.Fatalf("CheckID accepted %q, which is not one path element", r.ID)
		}
	}
	if r.PID != 0 && (r.PID < 1 || r.PID > MaxPID || strconv.Itoa(r.PID) != ref) {
		t.Fatalf("ParseRef(%q).PID = %d", ref, r.PID)
	}
	if n, convErr := strconv.Atoi(ref); convErr == nil && n >= 1 && n <= MaxPID && strconv.Itoa(n) == ref && r.PID != n {
		t.Fatalf("ParseRef(%q).PID = %d, want %d", ref, r.PID, n)
	}
	if (err != nil) != (r.ID == "" && r.PID == 0) || (err != nil && !errors.Is(err, ErrNotExist)) {
		t.Fatalf("ParseRef(%q) = %+v, %v", ref, r, err)
	}
}

// TestResolveRefUnreadable: a lookup that fails (a state root the caller
// may not read) is that failure, not "no such task".
func TestResolveRefUnreadable(t *testing.T) {
	denied := func(string) (bool, error) { return false, os.ErrPermission }
	none := func(int) (string, error) { return "", nil }
	for _, ref := range []string{"web", "123"} {
		_, err := ResolveRef(ref, denied, none)
		if !errors.Is(err, os.ErrPermission) || errors.Is(err, ErrNotExist) {
			t.Errorf("ResolveRef(%q) with an unreadable root: %v; want permission denied", ref, err)
		}
	}
}
