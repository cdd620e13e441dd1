package test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConsoleSocket: a task with a terminal sends its console's master end
// over --console-socket, as containerd's shim and podman's conmon expect.
func TestConsoleSocket(t *testing.T) {
	b := newBundle(t, "sh", "-c", "tty; echo hello-on-the-tty; sleep 1000")
	b.Spec.Process.Terminal = true
	sock := filepath.Join(b.Dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	masters := make(chan *os.File, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err == nil && len(fds) == 1 {
			masters <- os.NewFile(uintptr(fds[0]), "console")
		}
	}()
	createTask(t, b, "--console-socket", sock)
	var master *os.File
	select {
	case master = <-masters:
	case <-time.After(10 * time.Second):
		t.Fatal("no console master received on the socket")
	}
	defer master.Close()
	mustMoor(t, "start", b.ID)

	out := make(chan string, 1)
	go func() {
		var seen strings.Builder
		buf := make([]byte, 256)
		for !strings.Contains(seen.String(), "hello-on-the-tty") {
			n, err := master.Read(buf)
			if err != nil {
				break
			}
			seen.Write(buf[:n])
		}
		out <- seen.String()
	}()
	select {
	case got := <-out:
		if !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "hello-on-the-tty") {
			t.Fatalf("console output %q: want the task's tty name and its greeting", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing read from the console")
	}
	mustMoor(t, "delete", "--force", b.ID)

	// Without a console socket, a terminal cannot be had in a detached create.
	b2 := newBundle(t, "true")
	b2.Spec.Process.Terminal = true
	b2.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b2.ID) })
	if r := moor(t, "create", "--bundle", b2.Dir, b2.ID); r.Code == 0 || !strings.Contains(r.Stderr, "console socket") {
		t.Fatalf("create with a terminal and no console socket: %v", r)
	}
	checkNoTrace(t, b2.ID)
}

// TestRunWithTerminal: a foreground run of a task with a terminal gives it
// a pty and copies its output to moor's stdout.
func TestRunWithTerminal(t *testing.T) {
	b := newBundle(t, "sh", "-c", "tty; echo hello-from-a-pty; exit 4")
	b.Spec.Process.Terminal = true
	b.write(t)
	t.Cleanup(func() { moor(t, "delete", "--force", b.ID) })
	r := moor(t, "run", "--bundle", b.Dir, b.ID)
	if r.Code != 4 || !strings.Contains(r.Stdout, "/dev/pts/") || !strings.Contains(r.Stdout, "hello-from-a-pty") {
		t.Fatalf("run with a terminal: %v", r)
	}
}
