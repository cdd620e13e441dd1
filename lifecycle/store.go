package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/anchor"
)

// ErrNotExist means no task of that name or anchor PID exists.
var ErrNotExist = errors.New("no such task")

// ErrExist means a task of that name exists already.
var ErrExist = errors.New("task already exists")

// ErrCorrupt means a task's record exists but cannot be trusted: it is
// not a regular file, does not decode, or names another task or
// namespace than the directory it lives in.
var ErrCorrupt = errors.New("corrupt record")

// errTorn marks a corrupt record that does not decode, as a write cut
// short on a disk-backed root leaves it: one that libcontainer's state of
// the task may rebuild. A record that decodes to another place is never
// rebuilt over.
var errTorn = errors.New("torn")

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

// signal is the signal that ended the anchor, "" for none or no exit.
func (e *Exit) signal() string {
	if e == nil {
		return ""
	}
	return e.Signal
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
//	.scratch/<namespace>/<id>/ the task's scratch (userns and rootfs Prepare)
//	cgroup-parents.json        the parent cgroups moor made, for all tasks
//
// moor's files live apart from libcontainer's so that libcontainer's
// removal of its directory can never take the record with it: the record
// is made first (Claim) and removed last (Remove), and while it exists the
// task's name is taken and delete can finish whatever was cut short.
//
// The root is a trust boundary, as runc's own: every path below it is
// opened beneath it through no symlink (openat2 RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS), a symlink or a non-directory where a directory
// belongs is refused with ErrUnsafePath naming it, and a removal crosses
// no symlink and no mount. A record must match its place: its ID and
// namespace are its directory's, or it is corrupt (ErrCorrupt).
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
	return filepath.Join(s.Root, s.dirRel(namespace, id))
}

// ScratchDir is a task's scratch directory, outside libcontainer's state
// directory: the upper layer of a writable root, a pinned network
// namespace, an idmapped root. userns.Prepare and rootfs.Prepare fill it
// and rootfs.Cleanup removes it.
func (s Store) ScratchDir(namespace, id string) string {
	return filepath.Join(s.Root, ".scratch", namespace, id)
}

// Load reads a task's record. Its directory must be a directory, not a
// symlink (ErrUnsafePath); a record that is not a regular file, does not
// decode, or names another task or namespace than its place is corrupt.
func (s Store) Load(namespace, id string) (*Record, error) {
	if err := CheckID(id); err != nil {
		return nil, fmt.Errorf("load task: %w", err)
	}
	d, err := s.openDir(s.dirRel(namespace, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load task %s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("load task %s: %w", id, err)
	}
	defer d.Close()
	f, err := openAt(d, recordFile, unix.O_RDONLY, beneath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load task %s: %w", id, ErrNotExist)
	}
	var b []byte
	if err == nil {
		b, err = readRegular(f)
		f.Close()
	}
	if errors.Is(err, ErrUnsafePath) {
		return nil, fmt.Errorf("load task %s: %w: %w", id, ErrCorrupt, err)
	}
	if err != nil {
		return nil, fmt.Errorf("load task %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("load task %s: %w: %w: decode %s: %w", id, ErrCorrupt, errTorn, recordFile, err)
	}
	if r.ID != id || r.Namespace != namespace {
		return nil, fmt.Errorf("load task %s: %w: %s names task %q of namespace %q, not %q of %q",
			id, ErrCorrupt, recordFile, r.ID, r.Namespace, id, namespace)
	}
	return &r, nil
}

// Save writes a task's record atomically, into its directory only.
func (s Store) Save(r *Record) error {
	if err := s.checkPlace(r.Namespace, r.ID); err != nil {
		return fmt.Errorf("save task: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = s.writeIn(s.dirRel(r.Namespace, r.ID), recordFile, b)
	}
	if err != nil {
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
	d, err := s.openDir(s.dirRel(namespace, id))
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
	if err := CheckID(id); err != nil {
		return fmt.Errorf("save spec: %w", err)
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err == nil {
		err = s.writeIn(s.dirRel(namespace, id), specFile, b)
	}
	if err != nil {
		return fmt.Errorf("save spec of %s: %w", id, err)
	}
	return nil
}

// LoadSpec reads the spec the task was created from.
func (s Store) LoadSpec(namespace, id string) (*specs.Spec, error) {
	if err := CheckID(id); err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	b, err := s.readFile(path.Join(s.dirRel(namespace, id), specFile))
	if err != nil {
		return nil, fmt.Errorf("load spec of %s: %w", id, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("load spec of %s: %w", id, err)
	}
	return &spec, nil
}

// Namespaces lists the task namespaces that hold records, sorted.
func (s Store) Namespaces() ([]string, error) {
	d, err := s.openDir(".tasks")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list task namespaces: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list task namespaces: %w", err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return !namePattern.MatchString(n) })
	sort.Strings(names)
	return names, nil
}

// IDs lists the task IDs of a namespace, sorted: those with a record, and
// those libcontainer knows without one (a task made by an older layout or
// cut short), so that every name in use can be seen and deleted. A name
// taken by something other than a directory (a symlink) is listed too:
// using it gives ErrUnsafePath.
func (s Store) IDs(namespace string) ([]string, error) {
	seen := map[string]bool{}
	for _, rel := range []string{s.tasksRel(namespace), namespace} {
		d, err := s.openDir(rel)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		for _, n := range names {
			if CheckID(n) == nil {
				seen[n] = true
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

// Exists reports whether a task's name is taken: by moor's directory of
// it or libcontainer's, whatever they are. It fails when the state root
// cannot be read.
func (s Store) Exists(namespace, id string) (bool, error) {
	for _, rel := range []string{s.dirRel(namespace, id), s.containerRel(namespace, id)} {
		if ok, err := s.exists(rel); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// Claim takes a task's name: its directory appears with the record in it,
// at once (a directory made aside, then renamed into place without
// replacing anything), or not at all: ErrExist when the name is taken.
// What a removal cut short left (a directory without a record) is
// cleared first; a symlink there is refused. libcontainer's directory of
// the namespace is made too, so that libcontainer finds a directory there.
func (s Store) Claim(r *Record) error {
	if err := s.checkPlace(r.Namespace, r.ID); err != nil {
		return fmt.Errorf("claim task: %w", err)
	}
	lc, err := s.mkdirAll(r.Namespace)
	if err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	lc.Close()
	parent, err := s.mkdirAll(s.tasksRel(r.Namespace))
	if err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	defer parent.Close()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	tmp, err := mkdirTemp(parent, claimPrefix(r.ID))
	if err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	defer removeAt(parent, tmp) // gone once renamed
	if err := s.writeIn(path.Join(s.tasksRel(r.Namespace), tmp), recordFile, b); err != nil {
		return fmt.Errorf("claim task %s: %w", r.ID, err)
	}
	pfd := int(parent.Fd())
	for try := 0; ; try++ {
		err = unix.Renameat2(pfd, tmp, pfd, r.ID, unix.RENAME_NOREPLACE)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("claim task %s: %w", r.ID, err)
		}
		d, err := openAt(parent, r.ID, unix.O_RDONLY|unix.O_DIRECTORY, beneath)
		if err != nil {
			return fmt.Errorf("claim task %s: %w", r.ID, err)
		}
		f, serr := openAt(d, recordFile, unix.O_PATH, beneath)
		if serr == nil {
			f.Close()
		}
		d.Close()
		if !errors.Is(serr, os.ErrNotExist) || try > 0 {
			return fmt.Errorf("claim task %s: %w", r.ID, ErrExist)
		}
		if err := removeAt(parent, r.ID); err != nil { // a removal's remains
			return fmt.Errorf("claim task %s: %w", r.ID, err)
		}
	}
}

// mkdirTemp makes a new directory prefix<random> in dir and returns its
// name.
func mkdirTemp(dir *os.File, prefix string) (string, error) {
	for {
		name := prefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
		err := unix.Mkdirat(int(dir.Fd()), name, 0o700)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return "", &os.PathError{Op: "mkdir", Path: filepath.Join(dir.Name(), name), Err: err}
		}
	}
}

// claimPrefix names the directories Claim makes aside: never a valid ID.
func claimPrefix(id string) string { return "claim@" + id + "@" }

// Remove deletes moor's directory of a task, the record last, so that a
// removal cut short leaves either the record or nothing that counts; then
// the namespace directories, once empty. It removes only what is in the
// directory (a symlink there itself, never what it points at); a task
// directory that is a symlink is refused.
func (s Store) Remove(namespace, id string) error {
	if err := CheckID(id); err != nil {
		return fmt.Errorf("remove state: %w", err)
	}
	if err := s.removeDir(s.dirRel(namespace, id)); err != nil {
		return fmt.Errorf("remove state of %s: %w", id, err)
	}
	if d, err := s.openDir(s.tasksRel(namespace)); err == nil {
		names, _ := d.Readdirnames(-1)
		for _, n := range names {
			if strings.HasPrefix(n, claimPrefix(id)) {
				_ = removeAt(d, n) // a create cut short before its claim
			}
		}
		d.Close()
	}
	for _, rel := range []string{s.tasksRel(namespace), ".tasks", namespace} {
		s.removeEmpty(rel)
	}
	return nil
}

// removeDir removes a task's directory of moor's, the record last.
func (s Store) removeDir(rel string) error {
	d, err := s.openDir(rel)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n != recordFile {
			if err := removeAt(d, n); err != nil {
				return err
			}
		}
	}
	if err := removeAt(d, recordFile); err != nil {
		return err
	}
	return s.removeAll(rel)
}

// RemoveContainerDir removes libcontainer's state directory of a task, as
// removeAll does.
func (s Store) RemoveContainerDir(namespace, id string) error {
	if err := CheckID(id); err != nil {
		return fmt.Errorf("remove container state: %w", err)
	}
	return s.removeAll(s.containerRel(namespace, id))
}

// CheckContainer checks libcontainer's state directory of a task before
// libcontainer is let at it: a directory (not a symlink) whose state.json,
// when there, is a regular file naming this task. A missing directory is
// no error (loading it says so).
func (s Store) CheckContainer(namespace, id string) error {
	if err := CheckID(id); err != nil {
		return fmt.Errorf("check container state: %w", err)
	}
	b, err := s.readFile(path.Join(s.containerRel(namespace, id), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		d, err := s.openDir(s.containerRel(namespace, id)) // a fake runtime keeps no state.json
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err == nil {
			d.Close()
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("check container state of %s: %w", id, err)
	}
	var st struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil // libcontainer's load reports it
	}
	if st.ID != id {
		return fmt.Errorf("check container state of %s: %w: libcontainer's state.json names container %q", id, ErrCorrupt, st.ID)
	}
	return nil
}

// CheckScratch checks a task's scratch directory before it is cleaned:
// missing, or a directory reached through no symlink.
func (s Store) CheckScratch(namespace, id string) error {
	d, err := s.openDir(path.Join(".scratch", namespace, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check scratch of %s: %w", id, err)
	}
	return d.Close()
}

// checkPlace checks a task's namespace and ID, the names of its
// directories.
func (s Store) checkPlace(namespace, id string) error {
	if !namePattern.MatchString(namespace) {
		return fmt.Errorf("task namespace %q: want letters, digits and _.- only", namespace)
	}
	return CheckID(id)
}

// dirRel, tasksRel and containerRel are Dir, the namespace's directory of
// moor's and ContainerDir relative to the root.
func (s Store) dirRel(namespace, id string) string { return path.Join(s.tasksRel(namespace), id) }
func (s Store) tasksRel(namespace string) string   { return path.Join(".tasks", namespace) }
func (s Store) containerRel(namespace, id string) string {
	return path.Join(namespace, id)
}
