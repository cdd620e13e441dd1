package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/atomicfile"
)

// ErrNotExist means no task of that name or anchor PID exists.
var ErrNotExist = errors.New("no such task")

// ErrExist means a task of that name exists already.
var ErrExist = errors.New("task already exists")

// ErrCorrupt means a task's record exists but cannot be read.
var ErrCorrupt = errors.New("unreadable task record")

const (
	recordFile = "moor.json"
	specFile   = "config.json"
)

// idPattern is what libcontainer accepts as a container ID.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_+.-]+$`)

// namePattern is what moor accepts as a task namespace: a single path
// element, as containerd's namespaces are.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// MaxIDLen is the longest task ID: a task's ID names its directories
// and its cgroup, and a file name has at most 255 bytes.
const MaxIDLen = 255

// CheckID accepts a task ID as libcontainer does: letters, digits and _+.-,
// not "." or "..", at most MaxIDLen long.
func CheckID(id string) error {
	if id == "" || !idPattern.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("task id %q: want letters, digits and _+.- only", id)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("task id of %d bytes: too long, want at most %d", len(id), MaxIDLen)
	}
	return nil
}

// ExitReason says why a task's anchor ended.
type ExitReason string

const (
	ExitCode   ExitReason = "exited"   // the anchor exited by itself
	ExitSignal ExitReason = "signaled" // a signal killed the anchor
	ExitOOM    ExitReason = "oom"      // the kernel's OOM killer killed it
)

// Exit is how a task's anchor ended, as its reaper saw it (or, with no
// reaper of moor's watching, what the task's cgroup still tells).
type Exit struct {
	Code   int        `json:"code"`             // the shell's convention: 128+signal when killed; CodeUnknown
	Signal string     `json:"signal,omitempty"` // e.g. SIGKILL
	Reason ExitReason `json:"reason"`
	At     time.Time  `json:"at,omitzero"`
}

// CodeUnknown is the code of an exit no reaper of moor's saw; JSON shows
// it as "unknown".
const CodeUnknown = -1

// MarshalJSON writes CodeUnknown as "unknown".
func (e Exit) MarshalJSON() ([]byte, error) {
	type plain Exit
	if e.Code != CodeUnknown {
		return json.Marshal(plain(e))
	}
	return json.Marshal(struct {
		plain
		Code string `json:"code"`
	}{plain(e), "unknown"})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Exit) UnmarshalJSON(b []byte) error {
	type plain Exit
	var v struct {
		plain
		Code json.RawMessage `json:"code"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = Exit(v.plain)
	if string(v.Code) == `"unknown"` {
		e.Code = CodeUnknown
		return nil
	}
	if len(v.Code) == 0 {
		return nil
	}
	return json.Unmarshal(v.Code, &e.Code)
}

// Record is what moor keeps of a task beside libcontainer's own state.
type Record struct {
	ID          string            `json:"id"`
	Namespace   string            `json:"namespace"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs,omitempty"` // the root's absolute path
	Status      Status            `json:"status"`
	Anchor      anchor.Identity   `json:"anchor"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// CgroupPath is the task's cgroup as its spec gave it: absolute, or
	// relative to the cgroup of the process that created the task.
	CgroupPath string `json:"cgroupPath"`
	// CgroupParents are the ancestors of an absolute CgroupPath that moor
	// created and removes at delete once empty.
	CgroupParents []string `json:"cgroupParents,omitempty"`
	// CgroupParentDirs are the same for a relative CgroupPath, as
	// directories of each hierarchy (they depend on the creator's cgroup).
	CgroupParentDirs []string `json:"cgroupParentDirs,omitempty"`
	// Hooks are the spec's poststart and poststop hooks, which moor runs
	// itself.
	Hooks    *specs.Hooks `json:"hooks,omitempty"`
	Exit     *Exit        `json:"exit,omitempty"`
	Restarts int          `json:"restarts,omitempty"`
	Failures int          `json:"failures,omitempty"` // quick failures in a row, for a restart backoff
}

// Store keeps task state under Root:
//
//	<namespace>/<id>/          libcontainer's state directory (state.json)
//	.tasks/<namespace>/<id>/   moor's: moor.json (the record) and config.json
//	                           (the spec); flock'd as the task's lock
//	.scratch/<namespace>/<id>/ the task's scratch (rootfs.Prepare)
//	cgroup-parents.json        the parent cgroups moor made, for all tasks
//
// moor's files live apart from libcontainer's so that libcontainer's
// removal of its directory can never take the record with it: the record
// is made first (Claim) and removed last (Remove), and while it exists the
// task's name is taken and delete can finish whatever was cut short.
type Store struct {
	Root string
}

// NamespaceDir is libcontainer's state root for a task namespace.
func (s Store) NamespaceDir(namespace string) string { return filepath.Join(s.Root, namespace) }

// ContainerDir is libcontainer's state directory of one task.
func (s Store) ContainerDir(namespace, id string) string {
	return filepath.Join(s.Root, namespace, id)
}

// Dir is moor's directory of one task: its record and spec.
func (s Store) Dir(namespace, id string) string {
	return filepath.Join(s.tasksDir(namespace), id)
}

func (s Store) tasksDir(namespace string) string { return filepath.Join(s.Root, ".tasks", namespace) }

// ScratchDir is a task's scratch directory, outside libcontainer's state
// directory: the upper layer of a writable root, a pinned network
// namespace. rootfs.Prepare fills it and rootfs.Cleanup removes it.
func (s Store) ScratchDir(namespace, id string) string {
	return filepath.Join(s.Root, ".scratch", namespace, id)
}

// Load reads a task's record.
func (s Store) Load(namespace, id string) (*Record, error) {
	if err := CheckID(id); err != nil {
		return nil, fmt.Errorf("load task: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(namespace, id), recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load task %s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("load task %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("load task %s: %w: decode %s: %w", id, ErrCorrupt, recordFile, err)
	}
	return &r, nil
}

// Save writes a task's record atomically.
func (s Store) Save(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("save task %s: %w", r.ID, err)
	}
	if err := atomicfile.Write(filepath.Join(s.Dir(r.Namespace, r.ID), recordFile), b, 0o600); err != nil {
		return fmt.Errorf("save task %s: %w", r.ID, err)
	}
	return nil
}

// Lock takes the task's lock: an flock on its directory, so holders in
// other goroutines and other processes are serialised. A task whose
// directory is gone gives ErrNotExist.
func (s Store) Lock(namespace, id string) (unlock func(), err error) {
	if err := CheckID(id); err != nil {
		return nil, fmt.Errorf("lock task: %w", err)
	}
	d, err := os.Open(s.Dir(namespace, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lock task %s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("lock task %s: %w", id, err)
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		d.Close()
		return nil, fmt.Errorf("lock task %s: %w", id, err)
	}
	return func() { d.Close() }, nil
}

// Update loads a task's record under the task's lock, lets fn change it and
// saves it.
func (s Store) Update(namespace, id string, fn func(*Record) error) (*Record, error) {
	unlock, err := s.Lock(namespace, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err := s.Load(namespace, id)
	if err != nil {
		return nil, err
	}
	if err := fn(rec); err != nil {
		return rec, err
	}
	return rec, s.Save(rec)
}

// SaveSpec keeps the spec the task was created from.
func (s Store) SaveSpec(namespace, id string, spec *specs.Spec) error {
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("save spec of %s: %w", id, err)
	}
	if err := atomicfile.Write(filepath.Join(s.Dir(namespace, id), specFile), b, 0o600); err != nil {
		return fmt.Errorf("save spec of %s: %w", id, err)
	}
	return nil
}

// LoadSpec reads the spec the task was created from.
func (s Store) LoadSpec(namespace, id string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir(namespace, id), specFile))
	if err != nil {
		return nil, fmt.Errorf("load spec of %s: %w", id, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("load spec of %s: %w", id, err)
	}
	return &spec, nil
}

// IDs lists the task IDs of a namespace, sorted: those with a record, and
// those libcontainer knows without one (a task made by an older layout or
// cut short), so that every name in use can be seen and deleted.
func (s Store) IDs(namespace string) ([]string, error) {
	seen := map[string]bool{}
	for _, dir := range []string{s.tasksDir(namespace), s.NamespaceDir(namespace)} {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() && CheckID(e.Name()) == nil {
				seen[e.Name()] = true
			}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// Claim takes a task's name: its directory appears with the record in it,
// at once (a directory made aside, then renamed into place without
// replacing anything), or not at all: ErrExist when the name is taken.
// What a removal cut short left (a directory without a record) is
// cleared first.
func (s Store) Claim(r *Record) error {
	if err := CheckID(r.ID); err != nil {
		return fmt.Errorf("claim task: %w", err)
	}
	parent := s.tasksDir(r.Namespace)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	tmp, err := os.MkdirTemp(parent, claimPrefix(r.ID))
	if err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	defer os.RemoveAll(tmp) // gone once renamed
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, recordFile), b, 0o600); err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	dir := s.Dir(r.Namespace, r.ID)
	for try := 0; ; try++ {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("claim task %s: %w", r.ID, err)
		}
		if _, serr := os.Stat(filepath.Join(dir, recordFile)); serr == nil || try > 0 {
			return fmt.Errorf("claim task %s: %w", r.ID, ErrExist)
		}
		if err := os.RemoveAll(dir); err != nil { // a removal's remains
			return fmt.Errorf("claim task %s: %w", r.ID, err)
		}
	}
}

// claimPrefix names the directories Claim makes aside: never a valid ID.
func claimPrefix(id string) string { return "claim@" + id + "@" }

// Remove deletes moor's directory of a task, the record last, so that a
// removal cut short leaves either the record or nothing that counts; then
// the namespace directories, once empty.
func (s Store) Remove(namespace, id string) error {
	dir := s.Dir(namespace, id)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove state of %s: %w", id, err)
	}
	for _, e := range entries {
		if e.Name() != recordFile {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove state of %s: %w", id, err)
			}
		}
	}
	if err := os.Remove(filepath.Join(dir, recordFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove state of %s: %w", id, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove state of %s: %w", id, err)
	}
	claims, _ := filepath.Glob(filepath.Join(s.tasksDir(namespace), claimPrefix(id)+"*"))
	for _, c := range claims {
		_ = os.RemoveAll(c) // a create cut short before its claim
	}
	for _, d := range []string{s.tasksDir(namespace), filepath.Dir(s.tasksDir(namespace)), s.NamespaceDir(namespace)} {
		_ = os.Remove(d)
	}
	return nil
}
