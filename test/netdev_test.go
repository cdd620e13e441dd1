package test

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lf-edge/moor/nsutil"
	"github.com/lf-edge/moor/rootfs"
)

// vethPair makes a veth pair with link-local addresses (169.254.<n>.1 on
// the host end, .2 on the peer) and deletes it when the test ends,
// failing the test if either end is left on the host.
func vethPair(t *testing.T, n int) (host, peer string) {
	t.Helper()
	host, peer = fmt.Sprintf("mrh%d", n), fmt.Sprintf("mrp%d", n)
	ip(t, "link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", host).Run() // takes the peer with it
		for _, name := range []string{host, peer} {
			if exec.Command("ip", "link", "show", name).Run() == nil {
				t.Errorf("interface %s left on the host", name)
			}
		}
	})
	ip(t, "addr", "add", fmt.Sprintf("169.254.%d.1/24", n), "dev", host)
	ip(t, "addr", "add", fmt.Sprintf("169.254.%d.2/24", n), "dev", peer)
	ip(t, "link", "set", host, "up")
	return host, peer
}

func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// listenOnce accepts one connection on addr and sends what it reads on
// the channel.
func listenOnce(t *testing.T, addr string) (port int, got <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp4", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("ack\n"))
		ch <- line
	}()
	return l.Addr().(*net.TCPAddr).Port, ch
}

// TestNetDeviceVeth moves the peer of a veth pair into a task, renamed
// eth0, sends traffic across it on link-local addresses, and finds it back
// on the host, under its own name, once the task is deleted.
func TestNetDeviceVeth(t *testing.T) {
	id := taskID(t)
	host, peer := vethPair(t, 77)
	port, got := listenOnce(t, "169.254.77.1")
	data := dataDir(t)
	script := fmt.Sprintf(`ip link show lo > /data/lo; ip -o addr show eth0 > /data/eth0
echo hello-from-task | nc 169.254.77.1 %d > /data/reply`, port)
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{Entrypoint: []string{"/bin/sh", "-c", script}}})
	dir := seededBundle(t, id, vol, &rootfs.App{
		RootWritable: true,
		Volumes:      []rootfs.Volume{{Source: data, Destination: "/data"}},
		NetDevices:   map[string]rootfs.NetDev{peer: {Name: "eth0"}},
	})
	if r := runTask(t, id, dir); r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	select {
	case line := <-got:
		if line != "hello-from-task\n" {
			t.Errorf("host got %q, want hello-from-task", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection from the task")
	}
	if reply := readFile(t, filepath.Join(data, "reply")); reply != "ack\n" {
		t.Errorf("task got %q, want ack", reply)
	}
	if lo := readFile(t, filepath.Join(data, "lo")); !strings.Contains(lo, "UP") {
		t.Errorf("loopback not up in the task: %s", lo)
	}
	if eth0 := readFile(t, filepath.Join(data, "eth0")); !strings.Contains(eth0, "169.254.77.2/24") {
		t.Errorf("eth0 in the task lacks its address: %s", eth0)
	}
	if out := ip(t, "link", "show", peer); !strings.Contains(out, peer) {
		t.Errorf("%s is not back on the host: %s", peer, out)
	}
	if out := ip(t, "link", "show", host); !strings.Contains(out, host) {
		t.Errorf("%s is gone from the host", host)
	}
	checkScratchGone(t, id)
}

// TestNetDeviceJoinedNamespace joins a network namespace by path, moves an
// interface into it and brings it back at delete; the namespace itself is
// left as it was.
func TestNetDeviceJoinedNamespace(t *testing.T) {
	id := taskID(t)
	_, peer := vethPair(t, 78)
	nsPath := filepath.Join(t.TempDir(), "netns")
	if err := nsutil.NewPinnedNet(nsPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nsutil.UnpinNet(nsPath); err != nil {
			t.Error(err)
		}
	})
	want, err := nsutil.Inode(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	data := dataDir(t)
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{Entrypoint: []string{"/bin/sh", "-c",
		`ip link show eth1 > /data/eth1; stat -L -c %i /proc/self/ns/net > /data/netns`}}})
	dir := seededBundle(t, id, vol, &rootfs.App{
		RootWritable: true,
		Volumes:      []rootfs.Volume{{Source: data, Destination: "/data"}},
		NetDevices:   map[string]rootfs.NetDev{peer: {Name: "eth1"}},
		NetNamespace: nsPath,
	})
	if r := runTask(t, id, dir); r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(data, "netns"))); got != fmt.Sprint(want) {
		t.Errorf("task's network namespace %s, want the joined one %d", got, want)
	}
	if eth1 := readFile(t, filepath.Join(data, "eth1")); !strings.Contains(eth1, "eth1") {
		t.Errorf("eth1 not in the task: %q", eth1)
	}
	if out := ip(t, "link", "show", peer); !strings.Contains(out, peer) {
		t.Errorf("%s is not back on the host: %s", peer, out)
	}
	checkScratchGone(t, id)
}
