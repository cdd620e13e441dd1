package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Status is where a task is in its life.
type Status int

const (
	// Creating: the state directory exists, the anchor does not yet.
	Creating Status = iota
	// Created: the anchor exists and waits to be started.
	Created
	// Running: the anchor runs the task's process.
	Running
	// Paused: the task's cgroup is frozen.
	Paused
	// Stopped: the anchor has exited (or its PID belongs to another process).
	Stopped
	// Deleting: a delete began; delete (with or without force) finishes it.
	Deleting
	// Unknown: the task's record cannot be trusted (ErrCorrupt); state and
	// list say why, and only delete --force acts on it. Never recorded.
	Unknown
)

var statusNames = [...]string{"creating", "created", "running", "paused", "stopped", "deleting", "unknown"}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("status(%d)", int(s))
	}
	return statusNames[s]
}

// ParseStatus is the inverse of String.
func ParseStatus(name string) (Status, error) {
	if i := slices.Index(statusNames[:], name); i >= 0 {
		return Status(i), nil
	}
	return 0, fmt.Errorf("parse status %q: unknown", name)
}

// MarshalJSON writes the status by name.
func (s Status) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a status by name.
func (s *Status) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	v, err := ParseStatus(name)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ErrWrongStatus is returned when an operation is asked of a task in a
// status that does not allow it.
var ErrWrongStatus = errors.New("wrong task status")

// legal lists, for each status, the statuses it may move to.
var legal = map[Status][]Status{
	Creating: {Created, Stopped, Deleting},
	Created:  {Running, Stopped, Deleting},
	Running:  {Paused, Stopped, Deleting},
	Paused:   {Running, Stopped, Deleting},
	Stopped:  {Deleting},
	Deleting: {},
}

// transition is the one place a task's status changes. It rejects moves the
// lifecycle does not allow.
func transition(from, to Status) (Status, error) {
	if !slices.Contains(legal[from], to) {
		return from, fmt.Errorf("move task from %s to %s: %w", from, to, ErrWrongStatus)
	}
	return to, nil
}

// requireStatus is the guard every operation starts with.
func requireStatus(action, id string, cur Status, allowed ...Status) error {
	if slices.Contains(allowed, cur) {
		return nil
	}
	return fmt.Errorf("%s task %s: status is %s, want %v: %w", action, id, cur, allowed, ErrWrongStatus)
}
