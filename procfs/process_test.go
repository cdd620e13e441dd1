package procfs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

func TestParseCgroups(t *testing.T) {
	in := "12:cpu,cpuacct:/moor/a\n4:memory:/moor/a\n1:name=systemd:/user.slice\n0::/moor/a\n"
	got, err := ParseCgroups(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "/moor/a", "cpuacct": "/moor/a", "memory": "/moor/a", "name=systemd": "/user.slice", "": "/moor/a"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseCgroups = %v, want %v", got, want)
	}
	if _, err := ParseCgroups(strings.NewReader("12:cpu\n")); err == nil {
		t.Fatal("ParseCgroups accepted a line with one colon")
	}
}

// TestReadCgroupsAsLibcontainer: moor info showed what the cgroups
// library reads of /proc/<pid>/cgroup; ReadCgroups reads the same.
func TestReadCgroupsAsLibcontainer(t *testing.T) {
	got, err := ReadCgroups(Root, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	want, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadCgroups = %v, the cgroups library reads %v", got, want)
	}
}

func TestParseBootTime(t *testing.T) {
	got, err := ParseBootTime(strings.NewReader("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"))
	if err != nil || !got.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("ParseBootTime = %v, %v", got, err)
	}
	for _, bad := range []string{"cpu 1 2 3\n", "btime x\n"} {
		if _, err := ParseBootTime(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseBootTime(%q) succeeded", bad)
		}
	}
}

// writeProc writes files of a fake proc root: name → contents.
func writeProc(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadProcess(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, map[string]string{
		"77/stat":   "77 (sleep) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 250 0 0\n",
		"77/status": "Name:\tsleep\nVmRSS:\t 512 kB\nThreads:\t2\n",
		"77/cgroup": "0::/moor-test/x\n",
		"stat":      "btime 1000\n",
	})
	if err := os.Symlink("/some/root", filepath.Join(root, "77", "root")); err != nil {
		t.Fatal(err)
	}
	p, err := ReadProcess(root, 77)
	if err != nil {
		t.Fatal(err)
	}
	want := Process{
		Stat:      Stat{PID: 77, Comm: "sleep", State: 'S', PPID: 1, StartTime: 250},
		Status:    Status{RSSKiB: 512, Threads: 2},
		StartedAt: time.Unix(1002, 500_000_000).UTC(),
		Cgroups:   map[string]string{"": "/moor-test/x"},
		Root:      "/some/root",
	}
	if !reflect.DeepEqual(*p, want) {
		t.Fatalf("ReadProcess = %+v, want %+v", *p, want)
	}

	// Without a boot time and a readable root, the rest is still read.
	if err := os.Remove(filepath.Join(root, "stat")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "77", "root")); err != nil {
		t.Fatal(err)
	}
	if p, err = ReadProcess(root, 77); err != nil || !p.StartedAt.IsZero() || p.Root != "" || p.Threads != 2 {
		t.Fatalf("ReadProcess without btime and root = %+v, %v", p, err)
	}
	if _, err := ReadProcess(root, 78); !errors.Is(err, ErrGone) {
		t.Fatalf("ReadProcess of a missing pid: %v, want ErrGone", err)
	}
}

func TestReadCmdline(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, map[string]string{"5/cmdline": "sh\x00-c\x00echo a b\x00", "6/cmdline": ""})
	if args, err := ReadCmdline(root, 5); err != nil || !slices.Equal(args, []string{"sh", "-c", "echo a b"}) {
		t.Fatalf("ReadCmdline = %q, %v", args, err)
	}
	if args, err := ReadCmdline(root, 6); err != nil || args != nil {
		t.Fatalf("ReadCmdline of a kernel thread = %q, %v, want none", args, err)
	}
	if _, err := ReadCmdline(root, 7); !errors.Is(err, ErrGone) {
		t.Fatalf("ReadCmdline of a missing pid: %v, want ErrGone", err)
	}
	self, err := ReadCmdline(Root, os.Getpid())
	if err != nil || len(self) == 0 || self[0] != os.Args[0] {
		t.Fatalf("ReadCmdline of this test = %q, %v, want %s first", self, err, strconv.Quote(os.Args[0]))
	}
}
