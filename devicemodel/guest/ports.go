package guest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lf-edge/moor/devicemodel"
)

// portsDir lists the guest's virtio-serial ports, each with its name.
const portsDir = "/sys/class/virtio-ports"

// findPort waits until a virtio-serial port named name shows up and its
// device node exists, and opens it.
func (g *guest) findPort(name string, timeout time.Duration) (*os.File, error) {
	dir := g.path(portsDir)
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		ports, _ := os.ReadDir(dir)
		for _, p := range ports {
			b, err := os.ReadFile(filepath.Join(dir, p.Name(), "name"))
			if err != nil || strings.TrimSpace(string(b)) != name {
				continue
			}
			f, err := os.OpenFile(g.path(filepath.Join("/dev", p.Name())), os.O_RDWR, 0)
			if err == nil {
				return f, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("find port %s: not there after %v", name, timeout)
		}
		time.Sleep(delay)
	}
}

// control is the guest's end of the control port.
type control struct {
	f  *os.File
	mu sync.Mutex // one message written at a time

	signals chan int      // signal messages from the anchor
	acks    chan struct{} // ack messages
}

// newControl reads the port's messages until it closes.
func newControl(f *os.File) *control {
	c := &control{f: f, signals: make(chan int, 16), acks: make(chan struct{}, 1)}
	go c.read(f)
	return c
}

func (c *control) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m, err := devicemodel.ParseMessage(sc.Text())
		if err != nil {
			logf("control: %v", err)
			continue
		}
		switch m.Kind {
		case devicemodel.MsgSignal:
			c.signals <- m.Signal
		case devicemodel.MsgAck:
			select {
			case c.acks <- struct{}{}:
			default:
			}
		default:
			logf("control: unexpected %q", sc.Text())
		}
	}
}

// send writes one message.
func (c *control) send(m devicemodel.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.f, m.String()+"\n"); err != nil {
		logf("control: send %q: %v", m.String(), err)
	}
}

// ackTimeout bounds the wait for the anchor's ack of the app's exit.
const ackTimeout = 5 * time.Second

// report sends the app's exit and waits for the ack.
func (c *control) report(exit devicemodel.Message) {
	c.send(exit)
	select {
	case <-c.acks:
	case <-time.After(ackTimeout):
		logf("no ack of %q from the anchor after %v", exit.String(), ackTimeout)
	}
}

// logf writes a line of the guest init's own to the console.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "moor-guest: "+format+"\n", args...)
}
