package machine

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeSys records the calls a step makes instead of making them; fail
// names the calls that fail ("mount /x", "unmount /x", "module /p").
type fakeSys struct {
	mu    sync.Mutex
	root  string // stripped from paths in the record
	calls []string
	fail  map[string]error
}

func (f *fakeSys) record(call string, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.ReplaceAll(call, f.root, ""))
	return f.fail[strings.ReplaceAll(key, f.root, "")]
}

func (f *fakeSys) Mount(source, target, fstype string, flags uintptr, data string) error {
	return f.record(fmt.Sprintf("mount %s %s %s %#x %s", source, target, fstype, flags, data), "mount "+target)
}
func (f *fakeSys) Unmount(target string, flags int) error {
	return f.record("unmount "+target, "unmount "+target)
}
func (f *fakeSys) FSType(string) (int64, error) { return 0, nil }
func (f *fakeSys) Reboot(cmd int) error         { return f.record(fmt.Sprintf("reboot %#x", cmd), "reboot") }
func (f *fakeSys) Sethostname(name string) error {
	return f.record("hostname "+name, "hostname")
}
func (f *fakeSys) LinkUp(name string) error { return f.record("up "+name, "up "+name) }
func (f *fakeSys) LoadModule(path, params string) error {
	return f.record(strings.TrimSpace("module "+path+" "+params), "module "+path)
}
func (f *fakeSys) UseConsole(path string) error { return f.record("console "+path, "console") }
func (f *fakeSys) KillAll(sig unix.Signal) error {
	return f.record("killall "+unix.SignalName(sig), "killall")
}
func (f *fakeSys) Reap() bool { return false }
func (f *fakeSys) SwitchRoot(newRoot string) error {
	return f.record("switch-root "+newRoot, "switch-root")
}
func (f *fakeSys) Exec(p string, _, _ []string) error { return f.record("exec "+p, "exec") }

func (f *fakeSys) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// logBuf collects a test machine's log.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newTestMachine is a machine whose root is a temporary directory and
// whose privileged calls are recorded.
func newTestMachine(t *testing.T, cmdline string) (*machine, *fakeSys, *logBuf) {
	t.Helper()
	root := t.TempDir()
	fs := &fakeSys{root: root, fail: map[string]error{}}
	log := &logBuf{}
	return &machine{root: root, sys: fs, log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		cmdline: cmdline, release: "6.1.0-test"}, fs, log
}

// writeFiles writes name → content below root.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
