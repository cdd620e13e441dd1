package guest

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/devicemodel"
)

// A port is found by the name the virtio-serial driver gives it and
// opened at its device node; one that does not show up fails.
func TestFindPort(t *testing.T) {
	g, _ := newGuest(t, "")
	ports := filepath.Join(g.root, portsDir)
	write(t, filepath.Join(ports, "vport1p1/name"), devicemodel.PortStdout+"\n", 0o644)
	write(t, filepath.Join(ports, "vport1p2/name"), devicemodel.PortControl+"\n", 0o644)
	write(t, filepath.Join(ports, "vport1p3/name"), devicemodel.PortStderr+"\n", 0o644)
	write(t, filepath.Join(g.root, "dev/vport1p1"), "", 0o644)
	write(t, filepath.Join(g.root, "dev/vport1p2"), "", 0o644)
	f, err := g.findPort(devicemodel.PortControl, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f.Name() != filepath.Join(g.root, "dev/vport1p2") {
		t.Errorf("the control port opened %s", f.Name())
	}
	if _, err := g.findPort(devicemodel.PortStderr, 0); err == nil { // no device node
		t.Error("a port without its device node was opened")
	}
	if _, err := g.findPort("org.example.other", time.Millisecond); err == nil {
		t.Error("a port nobody made was found")
	}
}

// socketPair is a connected pair: the guest's end as a file, the anchor's
// as a connection.
func socketPair(t *testing.T) (*os.File, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "anchor")
	defer theirs.Close()
	c, err := net.FileConn(theirs)
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(fds[0]), "control")
	t.Cleanup(func() { ours.Close(); c.Close() })
	return ours, c
}

// anchorEnd plays the anchor on the control port.
type anchorEnd struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (a *anchorEnd) write(lines ...string) {
	a.t.Helper()
	if _, err := a.c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		a.t.Fatal(err)
	}
}

func (a *anchorEnd) read() devicemodel.Message {
	a.t.Helper()
	_ = a.c.SetReadDeadline(time.Now().Add(deadline))
	line, err := a.r.ReadString('\n')
	if err != nil {
		a.t.Fatalf("read control: %v", err)
	}
	m, err := devicemodel.ParseMessage(strings.TrimSpace(line))
	if err != nil {
		a.t.Fatal(err)
	}
	return m
}

func (a *anchorEnd) expect(want devicemodel.Message) {
	a.t.Helper()
	if m := a.read(); m != want {
		a.t.Fatalf("the anchor read %q, want %q", m.String(), want.String())
	}
}

func newControlPair(t *testing.T) (*control, *anchorEnd) {
	f, conn := socketPair(t)
	return newControl(f), &anchorEnd{t: t, c: conn, r: bufio.NewReader(conn)}
}

// The control port turns the anchor's signal and ack lines into events,
// passes over what it does not know, and reports an exit until acked.
func TestControl(t *testing.T) {
	c, a := newControlPair(t)
	a.write("signal 15", "nonsense", "started 3", "signal 1")
	for _, want := range []int{15, 1} {
		if sig := await(t, c.signals); sig != want {
			t.Errorf("signal %d, want %d", sig, want)
		}
	}
	c.send(devicemodel.Message{Kind: devicemodel.MsgStarted, PID: 7})
	a.expect(devicemodel.Message{Kind: devicemodel.MsgStarted, PID: 7})
	a.write("ack")
	exit := devicemodel.Message{Kind: devicemodel.MsgExit, Code: 4}
	c.report(exit) // the ack came first: no wait
	a.expect(exit)
}
