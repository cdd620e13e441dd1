package main

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecvFile: the file sent over the console socket comes back with its
// name and refers to the file sent; a message without a descriptor is
// refused.
func TestRecvFile(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	local, remote := os.NewFile(uintptr(fds[0]), "local"), os.NewFile(uintptr(fds[1]), "remote")
	defer local.Close()
	defer remote.Close()

	sent, err := os.CreateTemp(t.TempDir(), "master")
	if err != nil {
		t.Fatal(err)
	}
	defer sent.Close()
	if err := unix.Sendmsg(int(remote.Fd()), []byte("/dev/pts/7"), unix.UnixRights(int(sent.Fd())), nil, 0); err != nil {
		t.Fatal(err)
	}
	got, err := recvFile(local)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != "/dev/pts/7" {
		t.Errorf("name %q, want /dev/pts/7", got.Name())
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(int(sent.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(int(got.Fd()), &b); err != nil {
		t.Fatal(err)
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		t.Errorf("received %d:%d, sent %d:%d", b.Dev, b.Ino, a.Dev, a.Ino)
	}

	if _, err := remote.Write([]byte("no descriptor")); err != nil {
		t.Fatal(err)
	}
	if f, err := recvFile(local); err == nil {
		f.Close()
		t.Fatal("recvFile accepted a message without a descriptor")
	}
}
