package reaper

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Reaped is one child the reaper collected.
type Reaped struct {
	PID    int
	Status unix.WaitStatus
}

// Code is the exit status in the shell's convention: the exit code, or
// 128+signal for a child a signal killed.
func (r Reaped) Code() int {
	if r.Status.Signaled() {
		return 128 + int(r.Status.Signal())
	}
	return r.Status.ExitStatus()
}

// Reaper is the process's only waiter for children: it calls wait4(-1) on
// every SIGCHLD and hands each exit to whoever watches that PID.
//
// libcontainer waits for its own helper processes while it starts a task;
// HoldStarts keeps the reaper off while that happens, so the two never race
// for the same child. One goroutine serves all children: the thread count
// does not grow with them.
type Reaper struct {
	starts sync.RWMutex // starts hold it shared, the reaping loop exclusive

	mu       sync.Mutex
	watchers map[int]func(Reaped)
	orphans  func(Reaped)

	sigs chan os.Signal
	done chan struct{}
}

// NewReaper starts the reaper. Call it once per process, before any child
// is started that it must see.
func NewReaper() *Reaper {
	r := &Reaper{
		watchers: map[int]func(Reaped){},
		sigs:     make(chan os.Signal, 1),
		done:     make(chan struct{}),
	}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.loop()
	return r
}

// Close stops the reaper.
func (r *Reaper) Close() {
	signal.Stop(r.sigs)
	close(r.done)
}

// HoldStarts keeps the reaper from waiting until release is called. Hold it
// across a libcontainer start and the Watch of the new PID, so the child's
// exit is never collected before someone watches for it.
func (r *Reaper) HoldStarts() (release func()) {
	r.starts.RLock()
	return r.starts.RUnlock
}

// Watch calls fn once, from the reaper's goroutine, when pid is reaped.
// Watch a new child before releasing HoldStarts, or its exit may be taken
// for an orphan's.
func (r *Reaper) Watch(pid int, fn func(Reaped)) {
	r.mu.Lock()
	r.watchers[pid] = fn
	r.mu.Unlock()
}

// Unwatch forgets a watch that is no longer wanted.
func (r *Reaper) Unwatch(pid int) {
	r.mu.Lock()
	delete(r.watchers, pid)
	r.mu.Unlock()
}

// OnOrphan sets fn to be called for every reaped child nobody watches.
func (r *Reaper) OnOrphan(fn func(Reaped)) {
	r.mu.Lock()
	r.orphans = fn
	r.mu.Unlock()
}

// Start starts cmd and hands its exit to onExit, from the reaper's
// goroutine. cmd must never be waited for otherwise: the reaper is the
// process's only waiter.
func (r *Reaper) Start(cmd *exec.Cmd, onExit func(Reaped)) error {
	release := r.HoldStarts()
	defer release()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	r.Watch(cmd.Process.Pid, onExit)
	return nil
}

// WaitChan returns a channel that receives pid's exit.
func (r *Reaper) WaitChan(pid int) <-chan Reaped {
	ch := make(chan Reaped, 1)
	r.Watch(pid, func(ex Reaped) { ch <- ex })
	return ch
}

// ReapNow collects every child that has exited, without waiting for its
// SIGCHLD: a supervisor about to exit calls it so it leaves no zombie.
func (r *Reaper) ReapNow() { r.reapAll() }

func (r *Reaper) loop() {
	for {
		select {
		case <-r.done:
			return
		case <-r.sigs:
			r.reapAll()
		}
	}
}

// reapAll collects every child that has exited.
func (r *Reaper) reapAll() {
	r.starts.Lock()
	defer r.starts.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.dispatch(Reaped{PID: pid, Status: ws})
	}
}

func (r *Reaper) dispatch(ex Reaped) {
	r.mu.Lock()
	fn, ok := r.watchers[ex.PID]
	if ok {
		delete(r.watchers, ex.PID)
	} else {
		fn = r.orphans
	}
	r.mu.Unlock()
	if fn != nil {
		fn(ex)
	}
}
