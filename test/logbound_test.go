package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/supervisor"
)

// idle keeps a service running until SIGTERM.
const idle = `trap "exit 0" TERM; while :; do sleep 0.05; done`

// mountTmpfs mounts a tmpfs of size bytes on dir until the test ends.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// used is how much of the file system holding dir is in use.
func used(t *testing.T, dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Error(err)
		return 0
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// watchUsed samples the use of the file system holding dir until the
// returned function is called, which returns the highest use seen.
func watchUsed(t *testing.T, dir string) (peak func() int64) {
	var high atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if u := used(t, dir); u > high.Load() {
				high.Store(u)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return high.Load()
	}
}

// taskLogs reads the logs of the task id, newest last, checking that none
// is longer than maxSize and that at most keep older ones are there; it
// returns their total size and how many there are.
func taskLogs(t *testing.T, dir, id string, maxSize int64, keep int) (total int64, files int) {
	t.Helper()
	l := supervisor.TaskLogs{Dir: dir}
	for i := 0; i <= keep+1; i++ {
		path := l.Path(id)
		if i > 0 {
			path += "." + strconv.Itoa(i)
		}
		fi, err := os.Stat(path)
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		if i > keep {
			t.Errorf("%s: more than %d older logs", path, keep)
		}
		if fi.Size() > maxSize {
			t.Errorf("%s is %d bytes, past the bound %d", path, fi.Size(), maxSize)
		}
		total += fi.Size()
		files++
	}
	return total, files
}

// logTail says whether the newest output of the task id (its log or, just
// rotated, its newest older one) ends with want.
func logTail(dir, id, want string) bool {
	path := supervisor.TaskLogs{Dir: dir}.Path(id)
	for _, p := range []string{path, path + ".1"} {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			return strings.HasSuffix(string(b), want)
		}
	}
	return false
}

// TestLogBound: on a 64 MiB file system for logs, a service writing
// 200 MB as fast as it can and one writing 5 MB/s each keep at most
// (keep+1)×max-size of log, no file past max-size, and the file system is
// never full; the newest output of both is there.
func TestLogBound(t *testing.T) {
	const (
		maxSize = 1 << 20
		keep    = 3
		fsSize  = 64 << 20
		burst   = 200_000_000
		paced   = 20 * 500_000 // 500 kB every 100 ms
	)
	tr := newTree(t)
	mountTmpfs(t, tr.Logs, fsSize)
	tr.add(t, "services", "burst", fmt.Sprintf(`yes "a line of a service that bursts, long enough to look like a log line" | head -c %d; echo burst-done; %s`, burst, idle), nil)
	tr.add(t, "services", "paced", `i=0; while [ $i -lt 20 ]; do yes "a line of a service that writes 5 MB/s" | head -c 500000; i=$((i+1)); sleep 0.1; done; echo paced-done; `+idle, nil)
	peak := watchUsed(t, tr.Logs)
	start := time.Now()
	sup := tr.start(t, nil, "--log-max-size", strconv.Itoa(maxSize), "--log-keep", strconv.Itoa(keep))
	waitFor(t, 3*time.Minute, "the burst to be written", func() bool { return logTail(tr.Logs, "burst", "burst-done\n") })
	took := time.Since(start)
	waitFor(t, time.Minute, "the paced output to be written", func() bool { return logTail(tr.Logs, "paced", "paced-done\n") })
	high := peak()

	bound := int64((keep + 1) * maxSize)
	burstKept, burstFiles := taskLogs(t, tr.Logs, "burst", maxSize, keep)
	pacedKept, pacedFiles := taskLogs(t, tr.Logs, "paced", maxSize, keep)
	figure := fmt.Sprintf("log burst: %d MB written in %.1fs kept in %d bytes (%d files), a 5 MB/s writer's %d MB in %d bytes (%d files); bound %d each (margin 0); "+
		"the 64 MiB file system peaked at %.1f MiB used",
		burst/1_000_000, took.Seconds(), burstKept, burstFiles, paced/1_000_000, pacedKept, pacedFiles, bound, float64(high)/(1<<20))
	t.Log(figure)
	fmt.Println(figure)
	if burstKept > bound || pacedKept > bound {
		t.Errorf("kept past the bound %d: burst %d, paced %d", bound, burstKept, pacedKept)
	}
	// tmpfs counts whole pages: a page per file on top of what they hold.
	if limit := 2*bound + 2*(keep+1)*int64(os.Getpagesize()); high > limit {
		t.Errorf("the file system peaked at %d bytes used, past the two bounds (%d)", high, limit)
	}
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestLogFullFileSystem: on a file system something else filled, a
// service's newest output still reaches its log, its oldest output making
// room.
func TestLogFullFileSystem(t *testing.T) {
	tr := newTree(t)
	mountTmpfs(t, tr.Logs, 16<<20)
	tr.add(t, "services", "svc", `yes "old output" | head -c 3000000; echo old-done; while [ ! -e /shared/go ]; do sleep 0.05; done; `+
		`yes "new output" | head -c 2000000; echo newest; `+idle, nil)
	sup := tr.start(t, nil, "--log-max-size", "1MiB", "--log-keep", "3")
	waitFor(t, 30*time.Second, "the old output", func() bool { return logTail(tr.Logs, "svc", "old-done\n") })
	filler, err := os.Create(filepath.Join(tr.Logs, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	if err := os.WriteFile(filepath.Join(tr.Shared, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the newest output", func() bool { return logTail(tr.Logs, "svc", "newest\n") })
	kept, files := taskLogs(t, tr.Logs, "svc", 1<<20, 3)
	t.Logf("on a full file system: %d bytes kept in %d files, the newest output last", kept, files)
	if code := sup.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestLogAcrossSupervisors: a service whose supervisor was SIGKILLed goes
// on writing: its output waits in its pipe (never EPIPE), it then waits
// itself, alive, and the next supervisor writes all of it to the log, not
// a line lost.
func TestLogAcrossSupervisors(t *testing.T) {
	const lines = 40000 // about 2 MB: more than the pipe holds
	tr := newTree(t)
	tr.add(t, "services", "steady", fmt.Sprintf(`echo started; while [ ! -e /shared/go ]; do sleep 0.05; done; `+
		`i=0; while [ $i -lt %d ]; do echo "line $i of a service that outlives its supervisor"; i=$((i+1)); done; echo all-written; %s`, lines, idle), nil)
	first := tr.start(t, nil, "--log-max-size", "16MiB")
	st := waitRunning(t, "steady", 0)
	waitFor(t, 10*time.Second, "the first line", func() bool { return logTail(tr.Logs, "steady", "started\n") })
	first.stop(t, unix.SIGKILL)
	if err := os.WriteFile(filepath.Join(tr.Shared, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Look at the pipe from outside (a reader that never reads) until it
	// is full (lines do not fill its pages to the last byte): the
	// service's writes wait.
	fd, err := unix.Open(filepath.Join(tr.Logs, ".steady.pipe"), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	waitFor(t, 30*time.Second, "the pipe to fill", func() bool {
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
		return err == nil && n >= supervisor.PipeSize*9/10
	})
	if !alive(st.PID) {
		t.Fatal("the service died with no supervisor reading its output")
	}
	second := tr.start(t, nil, "--log-max-size", "16MiB")
	waitFor(t, time.Minute, "all the output", func() bool { return logTail(tr.Logs, "steady", "all-written\n") })
	if now, _ := sysState(t, "steady"); now.PID != st.PID {
		t.Fatalf("the service is %d now, not %d", now.PID, st.PID)
	}
	b, err := os.ReadFile(supervisor.TaskLogs{Dir: tr.Logs}.Path("steady"))
	if err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`(?m)^line (\d+) of`).FindAllStringSubmatch(string(b), -1)
	for i, m := range got {
		if m[1] != strconv.Itoa(i) {
			t.Fatalf("line %d of the log is line %s of the output", i, m[1])
		}
	}
	if len(got) != lines {
		t.Fatalf("%d lines in the log, want %d", len(got), lines)
	}
	if code := second.stop(t, unix.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
