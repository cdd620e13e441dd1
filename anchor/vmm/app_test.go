package vmm

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lf-edge/moor/devicemodel"
	"github.com/lf-edge/moor/devicemodel/qemu"
)

// syncBuffer is a bytes.Buffer safe for the copy and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAppChannel plays qemu and the guest init against the anchor's end:
// qemu connects to the three sockets, the guest's messages come out as
// events, the anchor's signal and ack reach the guest, and the app's
// output is copied until qemu closes it.
func TestAppChannel(t *testing.T) {
	p := qemu.PathsIn(t.TempDir())
	events := make(chan event, 4)
	a := &appChannel{log: slog.New(slog.DiscardHandler), events: events}
	if err := a.listen(p); err != nil {
		t.Fatal(err)
	}
	if err := a.send(devicemodel.Message{Kind: devicemodel.MsgAck}); err == nil {
		t.Error("send before qemu connected did not fail")
	}
	var conns []net.Conn
	for _, path := range []string{p.AppControl, p.AppStdout, p.AppStderr} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.accept(ctx, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	guest := bufio.NewReader(conns[0])
	conns[0].Write([]byte("started 42\nnonsense\nexit signal 15\n"))
	for _, want := range []devicemodel.Message{{Kind: devicemodel.MsgStarted, PID: 42}, {Kind: devicemodel.MsgExit, Signal: 15}} {
		select {
		case ev := <-events:
			if ev.msg == nil || *ev.msg != want {
				t.Errorf("event %+v, want message %+v", ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event for %+v", want)
		}
	}
	for _, m := range []devicemodel.Message{{Kind: devicemodel.MsgSignal, Signal: 15}, {Kind: devicemodel.MsgAck}} {
		if err := a.send(m); err != nil {
			t.Fatal(err)
		}
		line, err := guest.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != m.String() {
			t.Errorf("the guest read %q, %v, want %q", line, err, m.String())
		}
	}
	conns[1].Write([]byte("out of the app\n"))
	conns[2].Write([]byte("err of the app\n"))
	for _, c := range conns {
		c.Close()
	}
	a.drain()
	if stdout.String() != "out of the app\n" || stderr.String() != "err of the app\n" {
		t.Errorf("copied stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}
