package reaper

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

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
// every SIGCHLD and hands each exit to whoever started or watches that
// PID. One goroutine serves all children: the thread count does not grow
// with them.
type Reaper struct {
	// starts is held shared while a child is forked and subscribed to
	// (Start, HoldStarts), exclusive while children are reaped: no child
	// is collected between its fork and its subscription.
	starts sync.RWMutex

	mu       sync.Mutex
	started  map[int]func(Reaped) // children of Start, until reaped
	watchers map[int]func(Reaped)
	orphans  func(Reaped)

	// delivering counts the collections whose exits are still being
	// handed out (under mu); delivered is signalled as each ends.
	delivering int
	delivered  *sync.Cond

	// forked, when set (by tests), runs in Start between the child's fork
	// and its subscription.
	forked func(pid int)

	sigs   chan os.Signal
	done   chan struct{} // closed by Close
	closed chan struct{} // closed as the loop ends
}

// NewReaper starts the reaper. Call it once per process, before any child
// is started that it must see.
func NewReaper() *Reaper {
	r := &Reaper{
		started:  map[int]func(Reaped){},
		watchers: map[int]func(Reaped){},
		sigs:     make(chan os.Signal, 1),
		done:     make(chan struct{}),
		closed:   make(chan struct{}),
	}
	r.delivered = sync.NewCond(&r.mu)
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.loop()
	return r
}

// Close stops the reaper. Once it returns, the reaper collects no child:
// a child that exits later stays for whoever waits next.
func (r *Reaper) Close() {
	signal.Stop(r.sigs)
	close(r.done)
	<-r.closed
}

// HoldStarts keeps the reaper from waiting until release is called. It is
// for code that forks children it cannot start through Start and waits
// for some of them itself: libcontainer, while it makes a task's init or
// an exec'd process. Hold it across that call and the Watch of the
// process it leaves, so that no helper of libcontainer's is taken from
// it and the new process's exit is never taken for an orphan's.
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

// ErrNotFile means a command given to Start has a stdin, stdout or stderr
// that is not a file.
var ErrNotFile = errors.New("stdio must be files")

// Start starts cmd and hands its exit to onExit, and to no one else. It
// is the one way moor's processes start a helper of their own (a hook, the
// user-namespace helper, a device model, an app): whoever starts one gets
// its exit, whatever else this process waits for.
//
// The subscription is taken with the start: the child cannot be reaped
// between its fork and the moment onExit is its own, so an exit right
// after the fork is not lost and a PID reused after an earlier exit never
// gets that exit. onExit is called once, from the reaper's goroutine, and
// must not block. cmd must never be waited for otherwise, and its stdin,
// stdout and stderr must be nil or files (ErrNotFile): exec copies any
// other through goroutines that only cmd.Wait ends. cmd.Process may be
// signalled until onExit is called.
//
// On a nil Reaper (no reaper of moor's runs in this process: a CLI verb
// other than run) Start starts cmd and waits for it on a goroutine of its
// own, and hands its exit to onExit the same way.
func (r *Reaper) Start(cmd *exec.Cmd, onExit func(Reaped)) error {
	for _, f := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		if _, ok := f.(*os.File); f != nil && !ok {
			return fmt.Errorf("start %s: %w, not %T", cmd.Path, ErrNotFile, f)
		}
	}
	if r == nil {
		return startAndWait(cmd, onExit)
	}
	r.starts.RLock()
	defer r.starts.RUnlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	pid := cmd.Process.Pid
	if r.forked != nil {
		r.forked(pid)
	}
	r.mu.Lock()
	r.started[pid] = onExit
	r.mu.Unlock()
	return nil
}

// startAndWait is Start for a process with no reaper of moor's.
func startAndWait(cmd *exec.Cmd, onExit func(Reaped)) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	pid := cmd.Process.Pid
	go func() {
		ex := Reaped{PID: pid, Status: unix.WaitStatus(255 << 8)} // if it cannot be waited for
		if st, err := cmd.Process.Wait(); err == nil {
			if ws, ok := st.Sys().(syscall.WaitStatus); ok {
				ex.Status = unix.WaitStatus(ws)
			}
		}
		onExit(ex)
	}()
	return nil
}

// WaitChan returns a channel that receives pid's exit.
func (r *Reaper) WaitChan(pid int) <-chan Reaped {
	ch := make(chan Reaped, 1)
	r.Watch(pid, func(ex Reaped) { ch <- ex })
	return ch
}

// ReapNow collects every child that has exited, without waiting for its
// SIGCHLD, and reports whether any child is left: a supervisor about to
// exit calls it so it leaves no zombie, a machine's init to know when its
// last process is gone. When it returns, every exit collected so far has
// been handed out, by it or by the reaper's goroutine: an init that
// powers off next loses no record. A watcher must not call it.
func (r *Reaper) ReapNow() (left bool) {
	left = r.reapAll()
	r.mu.Lock()
	for r.delivering > 0 {
		r.delivered.Wait()
	}
	r.mu.Unlock()
	return left
}

func (r *Reaper) loop() {
	defer close(r.closed)
	for {
		select {
		case <-r.done:
			return
		case <-r.sigs:
			select {
			case <-r.done: // a SIGCHLD pending at Close is not served
				return
			default:
				r.reapAll()
			}
		}
	}
}

// reapAll collects every child that has exited and reports whether any
// child is left. Whom each exit goes to is settled as it is collected,
// under the lock that Start forks under; the calls are made once the lock
// is released, so a watcher that takes long holds up no start.
func (r *Reaper) reapAll() (left bool) {
	r.starts.Lock()
	deliveries, left := r.collect()
	r.mu.Lock()
	r.delivering++
	r.mu.Unlock()
	r.starts.Unlock()
	for _, d := range deliveries {
		d()
	}
	r.mu.Lock()
	r.delivering--
	r.delivered.Broadcast()
	r.mu.Unlock()
	return left
}

// collect waits for every child that has exited, under the starts lock,
// and returns the calls that hand out their exits.
func (r *Reaper) collect() (deliveries []func(), left bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil: // ECHILD: no child left
			return deliveries, false
		case pid == 0:
			return deliveries, true
		case ws.Stopped():
			// A traced child's stop (the user-namespace helper stops at
			// its exec): not an exit.
		default:
			if fn := r.recipient(pid); fn != nil {
				ex := Reaped{PID: pid, Status: ws}
				deliveries = append(deliveries, func() { fn(ex) })
			}
		}
	}
}

// recipient is whom pid's exit goes to: the Start that made the child,
// else its watcher, else OnOrphan.
func (r *Reaper) recipient(pid int) func(Reaped) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fn, ok := r.started[pid]; ok {
		delete(r.started, pid)
		return fn
	}
	if fn, ok := r.watchers[pid]; ok {
		delete(r.watchers, pid)
		return fn
	}
	return r.orphans
}
