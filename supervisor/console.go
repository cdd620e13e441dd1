package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// TaskOutput is where tasks' stdout and stderr go: files (TaskLogs) or a
// console (ConsoleOutput).
type TaskOutput interface {
	// Open returns the file a task writes its output to. The caller
	// closes it once the task holds its own descriptor.
	Open(id string) (*os.File, error)
	// Rotate caps what is kept of a task's output, where anything is.
	Rotate(id string) error
	// Flush returns once what the task wrote so far has been passed on,
	// or after a bound when the task's processes still hold the output.
	Flush(id string)
}

// Console is an output shared by moor's log and tasks' lines (a
// machine's /dev/console): each Write and each Line reaches it whole,
// never interleaved with another.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole serializes writes to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Write writes p in one piece (a log record).
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}

// Line writes one line of a task's output prefixed with its name:
// "[name] line".
func (c *Console) Line(name string, line []byte) {
	b := make([]byte, 0, len(name)+len(line)+4)
	b = append(append(append(b, '['), name...), "] "...)
	b = append(b, line...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		b = append(b, '\n')
	}
	_, _ = c.Write(b)
}

// DefaultFlushTimeout bounds ConsoleOutput.Flush.
const DefaultFlushTimeout = time.Second

// maxLine is where a line without a newline is cut: what comes after is
// written as a line of its own.
const maxLine = 4096

// ConsoleOutput sends each task's output to a Console, line by line,
// prefixed with the task's name. A task writes into a pipe; one goroutine
// per open pipe copies it (blocked in the runtime's poller, not in a
// thread) until every process of the task has closed it.
type ConsoleOutput struct {
	con *Console
	// FlushTimeout bounds Flush; DefaultFlushTimeout when 0.
	FlushTimeout time.Duration

	mu     sync.Mutex
	copies map[string][]chan struct{} // id → the copies not yet ended, each closed at its end
}

// NewConsoleOutput copies tasks' output to con.
func NewConsoleOutput(con *Console) *ConsoleOutput {
	return &ConsoleOutput{con: con, copies: map[string][]chan struct{}{}}
}

// Open makes a pipe for the task id and starts copying from it.
func (o *ConsoleOutput) Open(id string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("open console output of %s: %w", id, err)
	}
	done := make(chan struct{})
	o.mu.Lock()
	o.copies[id] = append(o.copies[id], done)
	o.mu.Unlock()
	go o.copy(id, r, done)
	return w, nil
}

func (o *ConsoleOutput) copy(id string, r *os.File, done chan struct{}) {
	defer func() {
		r.Close()
		o.mu.Lock()
		left := o.copies[id][:0]
		for _, c := range o.copies[id] {
			if c != done {
				left = append(left, c)
			}
		}
		if len(left) == 0 {
			delete(o.copies, id)
		} else {
			o.copies[id] = left
		}
		o.mu.Unlock()
		close(done)
	}()
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			o.con.Line(id, line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// Rotate keeps nothing, so there is nothing to rotate.
func (o *ConsoleOutput) Rotate(string) error { return nil }

// Flush waits, at most FlushTimeout, for the copies of the task id to end.
func (o *ConsoleOutput) Flush(id string) {
	o.mu.Lock()
	pending := append([]chan struct{}(nil), o.copies[id]...)
	o.mu.Unlock()
	o.wait(pending)
}

// FlushAll waits, at most FlushTimeout, for every copy to end.
func (o *ConsoleOutput) FlushAll() {
	o.mu.Lock()
	var pending []chan struct{}
	for _, cs := range o.copies {
		pending = append(pending, cs...)
	}
	o.mu.Unlock()
	o.wait(pending)
}

func (o *ConsoleOutput) wait(pending []chan struct{}) {
	d := o.FlushTimeout
	if d == 0 {
		d = DefaultFlushTimeout
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for _, c := range pending {
		select {
		case <-c:
		case <-t.C:
			return
		}
	}
}
