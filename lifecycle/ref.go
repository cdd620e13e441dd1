package lifecycle

import "fmt"

// MaxPID is the largest PID Linux gives (PID_MAX_LIMIT, 2^22 on 64-bit).
const MaxPID = 1 << 22

// Ref is what a task reference, a verb's argument, may stand for: a task
// ID, an anchor's host PID, or both ("123" is a valid ID and a PID).
type Ref struct {
	ID  string // the reference as a task ID; "" when CheckID refuses it
	PID int    // the reference as an anchor PID; 0 when it is not one
}

// ParseRef reads a task reference. A PID is written the one way /proc
// writes it: decimal digits without sign or leading zero, 1 to MaxPID. So
// "+5" and "05" are IDs only, never PID 5. A reference that is neither an
// ID nor a PID is an error wrapping ErrNotExist.
func ParseRef(ref string) (Ref, error) {
	var r Ref
	if CheckID(ref) == nil {
		r.ID = ref
	}
	r.PID = parsePID(ref)
	if r.ID == "" && r.PID == 0 {
		return r, fmt.Errorf("task reference %q: neither a task id nor a pid: %w", ref, ErrNotExist)
	}
	return r, nil
}

// parsePID is s as a canonical PID, or 0.
func parsePID(s string) int {
	if len(s) == 0 || len(s) > 7 || s[0] == '0' {
		return 0
	}
	pid := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0
		}
		pid = pid*10 + int(s[i]-'0')
	}
	if pid > MaxPID {
		return 0
	}
	return pid
}

// ResolveRef is the rule that turns a reference into a task ID: the task
// of that name when one exists, else the task whose live anchor has that
// PID. It does no I/O itself: exists is asked only about valid IDs, and
// anchorOf only about PIDs of 1 to MaxPID; anchorOf returns "" when no
// live anchor has the PID. A reference that finds no task is an error
// wrapping ErrNotExist; one that cannot be looked up (exists or anchorOf
// failed: a state root the caller may not read) is that error, never
// ErrNotExist.
func ResolveRef(ref string, exists func(id string) (bool, error), anchorOf func(pid int) (string, error)) (string, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	if r.ID != "" {
		ok, err := exists(r.ID)
		if err != nil {
			return "", fmt.Errorf("resolve task %s: %w", ref, err)
		}
		if ok {
			return r.ID, nil
		}
	}
	if r.PID == 0 {
		return "", fmt.Errorf("task %q: %w", ref, ErrNotExist)
	}
	id, err := anchorOf(r.PID)
	if err != nil {
		return "", fmt.Errorf("resolve task %s: %w", ref, err)
	}
	if id == "" {
		return "", fmt.Errorf("%q: no task by that name, nor a live anchor of that pid: %w", ref, ErrNotExist)
	}
	return id, nil
}
