package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/containerd/console"
	"github.com/opencontainers/runc/libcontainer/utils"
	"golang.org/x/sys/unix"
)

// foregroundTTY gives a foreground run's task a terminal: the far end of a
// socket pair goes to the task as its console socket; the console master
// that comes back is copied to and from moor's own stdio, with moor's
// terminal (when stdin is one) in raw mode meanwhile.
type foregroundTTY struct {
	local, remote *os.File
	received      chan error
	master        console.Console
	host          console.Console // nil when stdin is not a terminal
	output        chan struct{}   // closed once the task's output is drained
}

func newForegroundTTY() (*foregroundTTY, error) {
	local, remote, err := utils.NewSockPair("console")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	t := &foregroundTTY{local: local, remote: remote, received: make(chan error, 1), output: make(chan struct{})}
	go func() {
		f, err := recvFile(local)
		if err == nil {
			t.master, err = console.ConsoleFromFile(f)
		}
		t.received <- err
	}()
	return t, nil
}

// recvFile receives one file over a unix socket as libcontainer sends a
// console master: its name as the data, its descriptor as SCM_RIGHTS. A
// message that carries no descriptor or several is refused, and what it
// carried is closed.
func recvFile(socket *os.File) (*os.File, error) {
	name, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(int(socket.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Type == unix.SCM_RIGHTS {
			got, err := unix.ParseUnixRights(&msgs[i])
			if err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive file: %d descriptors, want 1", len(fds))
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// attach waits for the console master (sent while the task is created) and
// starts copying.
func (t *foregroundTTY) attach() error {
	select {
	case err := <-t.received:
		if err != nil {
			return fmt.Errorf("receive the task's console: %w", err)
		}
	case <-time.After(10 * time.Second):
		return errors.New("receive the task's console: nothing came")
	}
	if host, err := console.ConsoleFromFile(os.Stdin); err == nil {
		t.host = host
		if err := host.SetRaw(); err != nil {
			return fmt.Errorf("set the terminal raw: %w", err)
		}
		t.resize() // and again on each SIGWINCH, from run's signal loop
	}
	go func() { _, _ = io.Copy(t.master, os.Stdin) }()
	go func() {
		_, _ = io.Copy(os.Stdout, t.master) // ends with EIO once the task's side is closed
		close(t.output)
	}()
	return nil
}

// resize gives the task's console the size of moor's terminal.
func (t *foregroundTTY) resize() {
	if t != nil && t.host != nil && t.master != nil {
		_ = t.master.ResizeFrom(t.host)
	}
}

// Close drains what the task wrote, restores moor's terminal and closes
// the console.
func (t *foregroundTTY) Close() {
	if t.master != nil {
		select {
		case <-t.output:
		case <-time.After(time.Second):
		}
		_ = t.master.Close()
	}
	if t.host != nil {
		_ = t.host.Reset()
	}
	t.local.Close()
	t.remote.Close()
}
