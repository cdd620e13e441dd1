package lifecycle

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/lf-edge/moor/anchor"
	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/procfs"
	"github.com/lf-edge/moor/reaper"
	"github.com/lf-edge/moor/userns"
)

// DefaultRoot is where task state lives unless told otherwise.
const DefaultRoot = "/run/moor"

// maxConcurrentStarts is how many task starts run at once; more gain no
// speed on an edge device's few cores.
const maxConcurrentStarts = 4

// DefaultNamespace is the task namespace unless told otherwise.
const DefaultNamespace = "default"

// Options configure a Tasks.
type Options struct {
	Root          string // state root; DefaultRoot when empty
	Namespace     string // task namespace; DefaultNamespace when empty
	Logger        *slog.Logger
	SystemdCgroup bool // use the systemd cgroup driver (only where systemd runs)
	// CgroupParent, when set, confines every task's cgroup below it: a
	// relative cgroupsPath (or none: the task's ID) is placed under it,
	// an absolute one must lie below it. cgroupfs driver only. Empty
	// or "/" confines nothing: a spec's absolute cgroupsPath is taken as
	// it is, as runc and linuxkit take it.
	CgroupParent string
	// Runtime makes and finds containers; Libcontainer when nil.
	Runtime Runtime
	// AnySpec accepts every spec runc accepts, as the OCI verbs and a
	// linuxkit-built system tree need. Without it, Create holds a task to
	// the minimum viable spec of a user-defined task (RequireMinimumSpec),
	// EVE's rule. A spec with the MinimumSpecAnnotation is held to it
	// either way.
	AnySpec bool
	// HookRunner is a moor binary (one that has the hook verb) that runs
	// prestart, createRuntime and createContainer hooks so that they get
	// the status "created" on stdin; without it they get libcontainer's
	// "creating".
	HookRunner string
	ProcRoot   string // procfs; procfs.Root when empty
	// Reaper, when set, is the process's reaper: tasks this Tasks
	// creates are watched and their exits recorded. Without one the caller
	// is not the anchors' reaper and exits are only seen as "stopped".
	Reaper *reaper.Reaper
	// OnExit, when set, is told of every exit this Tasks records (of
	// tasks it created with a Reaper, or adopted). It is called from the
	// reaper's goroutine and must not block.
	OnExit func(id string, ex *Exit)
	// HoldContainers keeps each container this Tasks creates in memory
	// until the task's Delete, as runc's run does, so that its start and
	// delete do not load libcontainer's state again: for a process that
	// runs one task through its whole life. Without it a container is
	// held only from Create to Start.
	HoldContainers bool
}

// Tasks runs tasks of one task namespace.
type Tasks struct {
	opts   Options
	store  Store
	log    *slog.Logger
	userNS userns.Host // checks and makes the tasks' user namespaces

	mu      sync.Mutex
	waiters map[string][]chan *Exit // task ID → those waiting for its exit
	exited  map[string]*Exit        // exits the reaper saw, for late waiters

	// starts bounds concurrent libcontainer starts: each locks OS threads
	// while it forks, and Go keeps every thread it ever made, so unbounded
	// concurrent starts would leave the process with threads to match.
	starts chan struct{}

	hierOnce sync.Once
	hier     []string

	held map[string]heldContainer // task ID → the container this Tasks made; under mu
}

// heldContainer is a container this Tasks made, with the anchor it was
// made for: a task made again (a restart, or another process's create of
// the same name) has another anchor, and its container is loaded.
type heldContainer struct {
	c      Container
	anchor anchor.Identity
}

// New checks the options and returns a Tasks.
func New(opts Options) (*Tasks, error) {
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if !namePattern.MatchString(opts.Namespace) {
		return nil, fmt.Errorf("task namespace %q: want letters, digits and _.- only", opts.Namespace)
	}
	if path.Clean(opts.CgroupParent) == "/" {
		opts.CgroupParent = "" // the whole tree: no confinement
	}
	if p := opts.CgroupParent; p != "" && (!strings.HasPrefix(p, "/") || cgroup.CheckPath(p, false) != nil) {
		return nil, fmt.Errorf("cgroup parent %q: want an absolute cgroup path without \"..\"", p)
	}
	if opts.Runtime == nil {
		opts.Runtime = Libcontainer{}
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = procfs.Root
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.SystemdCgroup {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return nil, errors.New("systemd cgroup driver: systemd is not running on this host (no /run/systemd/system); drop --systemd-cgroup")
		}
	}
	return newTasks(opts), nil
}

// newTasks is a Tasks of checked options.
func newTasks(opts Options) *Tasks {
	return &Tasks{
		opts:    opts,
		store:   Store{Root: opts.Root},
		userNS:  userns.Host{ProcRoot: opts.ProcRoot, StateRoot: opts.Root, Reaper: opts.Reaper},
		log:     opts.Logger.With("namespace", opts.Namespace),
		waiters: map[string][]chan *Exit{},
		exited:  map[string]*Exit{},
		starts:  make(chan struct{}, maxConcurrentStarts),
		held:    map[string]heldContainer{},
	}
}

// inNamespace is a Tasks like s for another task namespace, with no
// OnExit of its own.
func (s *Tasks) inNamespace(ns string) *Tasks {
	if ns == s.opts.Namespace {
		return s
	}
	o := s.opts
	o.Namespace, o.OnExit = ns, nil
	return newTasks(o)
}

// Store is the state store this Tasks uses.
func (s *Tasks) Store() Store { return s.store }

// Resolve turns a task reference, an ID or an anchor PID, into the task's
// record. An ID wins when a task of that name exists.
func (s *Tasks) Resolve(ref string) (*Record, error) {
	id, rec, err := s.resolveID(ref)
	if err != nil || rec != nil {
		return rec, err
	}
	return s.loadRecord(id)
}

// resolveID turns a task reference into the task's ID by the one rule,
// ResolveRef; a reference by anchor PID also gives the record it read on
// the way. A name is taken while moor's record or libcontainer's state of
// it exists.
func (s *Tasks) resolveID(ref string) (string, *Record, error) {
	exists := func(id string) (bool, error) { return s.store.Exists(s.opts.Namespace, id) }
	var found *Record
	anchorOf := func(pid int) (string, error) {
		ids, err := s.store.IDs(s.opts.Namespace)
		if err != nil {
			return "", err
		}
		for _, id := range ids {
			rec, err := s.store.Load(s.opts.Namespace, id)
			if err != nil || rec.Anchor.PID != pid || rec.Exit != nil {
				continue
			}
			if rec.Anchor.Check(s.opts.ProcRoot) == nil {
				found = rec
				return id, nil
			}
		}
		return "", nil
	}
	id, err := ResolveRef(ref, exists, anchorOf)
	if err != nil {
		return "", nil, fmt.Errorf("namespace %s: %w", s.opts.Namespace, err)
	}
	return id, found, nil
}

// loadRecord reads a task's record, rebuilding one that does not decode
// (or is missing beside libcontainer's state); one that names another
// place stays corrupt.
func (s *Tasks) loadRecord(id string) (*Record, error) {
	rec, err := s.store.Load(s.opts.Namespace, id)
	if errors.Is(err, ErrNotExist) {
		if ok, _ := s.store.exists(s.store.containerRel(s.opts.Namespace, id)); ok {
			err = fmt.Errorf("task %s: libcontainer's state without moor's record: %w: %w", id, ErrCorrupt, errTorn)
		}
	}
	if errors.Is(err, errTorn) {
		return s.recoverRecord(id, err)
	}
	return rec, err
}

// observe is the task's status now, as a handle sees it.
func (s *Tasks) observe(rec *Record) Status {
	h := s.peek(rec)
	defer h.close()
	return h.status
}

// peek is a handle on a task's record already read, without its lock,
// its status observed: for reading, not changing, the task.
func (s *Tasks) peek(rec *Record) *handle {
	h := &handle{t: s, rec: rec, unlock: func() {}}
	h.observe()
	return h
}

// hierarchies lists the host's cgroup mounts, for the parent bookkeeping.
// They are read once: a host does not remount its cgroup hierarchies under
// a running supervisor.
func (s *Tasks) hierarchies() []string {
	s.hierOnce.Do(func() {
		var err error
		if s.hier, err = cgroup.Hierarchies(); err != nil {
			s.log.Warn("list cgroup hierarchies", "err", err)
		}
	})
	return s.hier
}

// hold keeps the container a create of this Tasks made, for the task's
// start (and, with HoldContainers, the rest of its life here).
func (s *Tasks) hold(rec *Record, c Container) {
	s.mu.Lock()
	s.held[rec.ID] = heldContainer{c: c, anchor: rec.Anchor}
	s.mu.Unlock()
}

// heldContainer is the container held for the task's current anchor, or
// nil.
func (s *Tasks) heldContainer(rec *Record) Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.held[rec.ID]; ok && h.anchor == rec.Anchor {
		return h.c
	}
	return nil
}

// unhold forgets the container held for a task.
func (s *Tasks) unhold(id string) {
	s.mu.Lock()
	delete(s.held, id)
	s.mu.Unlock()
}

// startSlot waits for one of the concurrent start slots and returns its
// release.
func (s *Tasks) startSlot() (release func()) {
	s.starts <- struct{}{}
	return func() { <-s.starts }
}

// recoverRecord rebuilds the record of a task whose moor.json cannot be
// read or is missing beside libcontainer's state (a crash on a disk-backed state root can leave it torn) from
// libcontainer's state.json: the anchor's identity, the cgroup, the bundle
// and the creation time; the status is the kernel's. What only the record
// knew (the cgroup parents moor made, the exit, restarts) is lost. The
// rebuilt record is saved, so the task is whole again; corrupt is returned
// when libcontainer's state cannot be read either.
func (s *Tasks) recoverRecord(id string, corrupt error) (*Record, error) {
	c, err := s.loadContainer(s.opts.Namespace, id)
	if err != nil {
		return nil, errors.Join(corrupt, err)
	}
	st, err := c.State()
	if err != nil {
		return nil, errors.Join(corrupt, err)
	}
	cfg := c.Config()
	rec := &Record{
		ID:        id,
		Namespace: s.opts.Namespace,
		Status:    Running, // observe asks the kernel
		Anchor:    anchor.Identity{PID: st.InitProcessPid, StartTime: st.InitProcessStartTime},
		Created:   st.Created,
	}
	if cfg.Cgroups != nil {
		rec.CgroupPath = cfg.Cgroups.Path
	}
	for _, l := range cfg.Labels {
		if b, ok := strings.CutPrefix(l, "bundle="); ok {
			rec.Bundle = b
		}
	}
	rec.Status = s.observe(rec)
	// Saved without the task's lock (the caller may hold it): two that
	// rebuild it at once write the same record.
	err = s.store.Save(rec)
	if errors.Is(err, os.ErrNotExist) { // no record at all: claim one
		err = s.store.Claim(rec)
	}
	if err != nil {
		return nil, errors.Join(corrupt, err)
	}
	s.log.Warn("task record was unreadable: rebuilt from libcontainer's state", "id", id, "err", corrupt)
	return rec, nil
}
