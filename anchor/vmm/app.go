package vmm

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
)

// appChannel is the anchor's end of a container app's ports: three unix
// sockets it listens on before qemu starts and qemu connects to. Control
// messages go to the loop as events; the app's stdout and stderr are
// copied to the anchor's own, the task's output.
type appChannel struct {
	log    *slog.Logger
	events chan<- event

	listeners [3]net.Listener // control, stdout, stderr
	mu        sync.Mutex      // one message written at a time
	control   net.Conn
	copies    sync.WaitGroup // the output copies, until qemu closes them
}

// listen makes the sockets qemu will connect to.
func (a *appChannel) listen(p qemu.Paths) error {
	for i, path := range []string{p.AppControl, p.AppStdout, p.AppStderr} {
		l, err := net.Listen("unix", path)
		if err != nil {
			a.close()
			return fmt.Errorf("listen on app port: %w", err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false) // the poststop hook and the next start remove it
		a.listeners[i] = l
	}
	return nil
}

// accept takes qemu's three connections (made as it started), starts the
// output copies and the control reader, and closes the listeners.
func (a *appChannel) accept(ctx context.Context, stdout, stderr io.Writer) error {
	defer a.close()
	var conns [3]net.Conn
	for i, l := range a.listeners {
		if dl, ok := ctx.Deadline(); ok {
			_ = l.(*net.UnixListener).SetDeadline(dl)
		}
		c, err := l.Accept()
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return fmt.Errorf("accept app port: %w", err)
		}
		conns[i] = c
	}
	a.mu.Lock()
	a.control = conns[0]
	a.mu.Unlock()
	for i, w := range []io.Writer{stdout, stderr} {
		a.copies.Add(1)
		go func(c net.Conn) {
			defer a.copies.Done()
			defer c.Close()
			_, _ = io.Copy(keepReading{w}, c)
		}(conns[i+1])
	}
	go a.read(conns[0])
	return nil
}

// keepReading writes to w and drops what w refuses (a pipe its reader
// closed), so that the app's output is still read: a port nobody reads
// would block the app.
type keepReading struct{ w io.Writer }

func (k keepReading) Write(p []byte) (int, error) {
	_, _ = k.w.Write(p)
	return len(p), nil
}

func (a *appChannel) close() {
	for _, l := range a.listeners {
		if l != nil {
			l.Close()
		}
	}
}

// read turns control lines into events until qemu closes the socket.
func (a *appChannel) read(c net.Conn) {
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		m, err := devicemodel.ParseMessage(sc.Text())
		if err != nil {
			a.log.Warn("app control", "err", err)
			continue
		}
		a.events <- event{msg: &m}
	}
}

// send writes one message to the guest init; it fails before qemu
// connected.
func (a *appChannel) send(m devicemodel.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.control == nil {
		return fmt.Errorf("send %q: the app's control port is not connected", m.String())
	}
	_ = a.control.SetWriteDeadline(time.Now().Add(cmdTimeout))
	if _, err := io.WriteString(a.control, m.String()+"\n"); err != nil {
		return fmt.Errorf("send %q: %w", m.String(), err)
	}
	return nil
}

// drainTimeout bounds the wait for the app's last output once qemu is
// gone (its sockets close with it).
const drainTimeout = 2 * time.Second

// drain waits for the output copies to reach the end of their streams.
func (a *appChannel) drain() {
	done := make(chan struct{})
	go func() { a.copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		a.log.Warn("app output still open after the guest ended", "waited", drainTimeout)
	}
}

// onMessage records a message of the guest init in the run state.
func (l *loop) onMessage(m devicemodel.Message) {
	switch m.Kind {
	case devicemodel.MsgStarted:
		l.o.Logger.Info("app started", "pid", m.PID)
		l.state.AppPID = m.PID
		l.publish()
	case devicemodel.MsgError:
		l.o.Logger.Warn("guest init failed", "err", m.Text)
		l.appError = m.Text
	case devicemodel.MsgExit:
		ex := devicemodel.ExitOf(m)
		ex.Error = l.appError
		l.o.Logger.Info("app exited", "code", ex.Code, "signal", ex.Signal)
		l.state.AppExit = ex
		l.publish()
		if err := l.app.send(devicemodel.Message{Kind: devicemodel.MsgAck}); err != nil {
			l.o.Logger.Warn("ack app exit", "err", err)
		}
	default:
		l.o.Logger.Warn("app control: unexpected message", "message", m.String())
	}
}
