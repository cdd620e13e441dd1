package test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/rootfs"
)

// rootfsCgroupParent holds the cgroups of the tasks of this file and of
// netdev_test.go and info_test.go.
var rootfsCgroupParent = cgroupRunParent + "-rootfs"

// newVolume makes a root volume: rootfs/ (a copy of the busybox rootfs,
// with an "app" user and an "extra" group) and the image config given.
func newVolume(t *testing.T, img *rootfs.ImageConfig) string {
	t.Helper()
	vol := filepath.Join(t.TempDir(), "vol")
	if err := copyTree(busyboxRoot, filepath.Join(vol, rootfs.RootfsDir)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(vol, "rootfs/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
	writeFile(t, filepath.Join(vol, "rootfs/etc/group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
	if img != nil {
		writeJSON(t, filepath.Join(vol, rootfs.ImageConfigFile), img)
	}
	return vol
}

// copyTree copies directories, regular files and symlinks.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(to, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, info.Mode().Perm())
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dataDir makes a directory for a task to write into, writable by all.
func dataDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(d, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

// seededBundle runs `moor spec --seed vol [--override app.json]` into a
// new bundle, then puts the task's cgroup under rootfsCgroupParent.
func seededBundle(t *testing.T, id, vol string, app *rootfs.App) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	args := []string{"spec", "--seed", vol, "--bundle", dir}
	if app != nil {
		path := filepath.Join(filepath.Dir(dir), "app.json")
		writeJSON(t, path, app)
		args = append(args, "--override", path)
	}
	mustMoor(t, args...)
	editSpec(t, dir, func(s *specs.Spec) { s.Linux.CgroupsPath = rootfsCgroupParent + "/" + id })
	return dir
}

// editSpec changes a bundle's config.json.
func editSpec(t *testing.T, dir string, change func(*specs.Spec)) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	var s specs.Spec
	if err := json.Unmarshal([]byte(readFile(t, path)), &s); err != nil {
		t.Fatal(err)
	}
	change(&s)
	writeJSON(t, path, &s)
}

// runTask runs a task in the foreground to its end (moor run deletes it).
func runTask(t *testing.T, id, bundleDir string) result {
	t.Helper()
	t.Cleanup(func() { moor(t, "delete", "--force", id) })
	return moor(t, "run", "--bundle", bundleDir, id)
}

// runDetachedFrom runs `moor run --detach` on a bundle. The task inherits
// moor's stdout and stderr, so they are files, not pipes a test would wait
// on until the task ends.
func runDetachedFrom(t *testing.T, id, bundleDir string) {
	t.Helper()
	t.Cleanup(func() { moor(t, "delete", "--force", id) })
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := moorCmd("run", "--detach", "--bundle", bundleDir, id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		t.Fatalf("run --detach %s: %v: %s", id, err, readFile(t, out.Name()))
	}
}

// treeDigest lists every entry of a tree with its mode, size and mtime.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", p, info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkScratchGone fails unless the task left no scratch directory and no
// mount under the state root.
func checkScratchGone(t *testing.T, id string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(stateRoot, ".scratch", "default", id)); err == nil {
		t.Errorf("scratch directory of %s is left", id)
	}
	mi := readFile(t, "/proc/self/mountinfo")
	for _, line := range strings.Split(mi, "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], stateRoot+"/") {
			t.Errorf("mount left under the state root: %s", f[4])
		}
	}
}

// TestAcceptanceImageConfigApp is the acceptance: an image config
// whose Entrypoint/Cmd echo env vars, an app adding one, a volume and a
// writable root.
func TestAcceptanceImageConfigApp(t *testing.T) {
	id := taskID(t)
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{`echo "image=$IMGVAR app=$APPVAR both=$BOTH" > /data/out && echo written > /written && cat /written >> /data/out`},
		Env:        []string{"IMGVAR=from-image", "BOTH=image"},
	}})
	data := dataDir(t)
	before := treeDigest(t, vol)
	dir := seededBundle(t, id, vol, &rootfs.App{
		Env:          []string{"APPVAR=from-app", "BOTH=app"},
		Volumes:      []rootfs.Volume{{Source: data, Destination: "/data"}},
		RootWritable: true,
	})
	if r := runTask(t, id, dir); r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	if got, want := readFile(t, filepath.Join(data, "out")), "image=from-image app=from-app both=app\nwritten\n"; got != want {
		t.Errorf("task wrote %q, want %q", got, want)
	}
	if after := treeDigest(t, vol); after != before {
		t.Errorf("the volume changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	checkScratchGone(t, id)
}

// TestSeedConfigJSON takes a volume's config.json as it is, over its
// image-config.json.
func TestSeedConfigJSON(t *testing.T) {
	id := taskID(t)
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{Cmd: []string{"/bin/false"}}})
	data := dataDir(t)
	b := newBundle(t, "/bin/sh", "-c", "echo from-config-json > /data/out")
	b.Spec.Root = &specs.Root{Path: "rootfs", Readonly: true}
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: data, Options: []string{"rbind", "rw"}})
	b.Spec.Process.Args = []string{"/bin/sh", "-c", "echo from-config-json > /mnt/out"}
	writeJSON(t, filepath.Join(vol, "config.json"), b.Spec)
	dir := seededBundle(t, id, vol, nil)
	if r := runTask(t, id, dir); r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	if got := readFile(t, filepath.Join(data, "out")); got != "from-config-json\n" {
		t.Errorf("task wrote %q: config.json must win over image-config.json", got)
	}
	checkScratchGone(t, id)
}

// TestSeedUserAndStopSignal resolves the image's User against the
// volume's /etc/passwd and /etc/group, and stop sends its StopSignal.
func TestSeedUserAndStopSignal(t *testing.T) {
	id := taskID(t)
	script := `id -u > /data/ids; id -g >> /data/ids; id -G >> /data/ids
trap 'echo got-usr1 > /data/signal; exit 0' USR1
echo ready > /data/ready
while :; do sleep 0.05; done`
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{
		User: "app", Entrypoint: []string{"/bin/sh", "-c", script}, StopSignal: "SIGUSR1",
	}})
	data := dataDir(t)
	dir := seededBundle(t, id, vol, &rootfs.App{Volumes: []rootfs.Volume{{Source: data, Destination: "/data"}}, RootWritable: true})
	runDetachedFrom(t, id, dir)
	waitFor(t, 10*time.Second, "the task to be ready", func() bool {
		_, err := os.Stat(filepath.Join(data, "ready"))
		return err == nil
	})
	if got, want := readFile(t, filepath.Join(data, "ids")), "1000\n1000\n1000 2000\n"; got != want {
		t.Errorf("ids %q, want %q (user app, group app, groups app extra)", got, want)
	}
	mustMoor(t, "stop", "--timeout", "10s", id)
	if got := readFile(t, filepath.Join(data, "signal")); got != "got-usr1\n" {
		t.Errorf("signal file %q: stop must send the image's StopSignal", got)
	}
	mustMoor(t, "delete", id)
	checkScratchGone(t, id)
}

// TestVolumesReadOnlyAndWritable mounts a read-only and a read-write
// volume at mount points moor creates in the writable root.
func TestVolumesReadOnlyAndWritable(t *testing.T) {
	id := taskID(t)
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{Entrypoint: []string{"/bin/sh", "-c",
		`cat /vols/ro/in > /vols/rw/out; if touch /vols/ro/new 2>/dev/null; then echo ro-written >> /vols/rw/out; else echo ro-refused >> /vols/rw/out; fi`}}})
	ro, rw := dataDir(t), dataDir(t)
	writeFile(t, filepath.Join(ro, "in"), "from-ro\n")
	dir := seededBundle(t, id, vol, &rootfs.App{RootWritable: true, Volumes: []rootfs.Volume{
		{Source: ro, Destination: "/vols/ro", ReadOnly: true},
		{Source: rw, Destination: "/vols/rw"},
	}})
	if r := runTask(t, id, dir); r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	if got := readFile(t, filepath.Join(rw, "out")); got != "from-ro\nro-refused\n" {
		t.Errorf("task wrote %q, want from-ro then ro-refused", got)
	}
	if _, err := os.Stat(filepath.Join(ro, "new")); err == nil {
		t.Error("the read-only volume was written")
	}
	if _, err := os.Stat(filepath.Join(vol, "rootfs/vols")); err == nil {
		t.Error("the mount points were made in the volume, not in the overlay")
	}
	checkScratchGone(t, id)
}

// TestVolumeEscapeBySymlink refuses a destination that a symlink in the
// root leads out of it, in `moor spec` and again in `moor create`.
func TestVolumeEscapeBySymlink(t *testing.T) {
	id := taskID(t)
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{Cmd: []string{"/bin/true"}}})
	outside := dataDir(t)
	// A relative link whose ".." climbs out of the root (an absolute link
	// would mean the task's own root, as inside the task).
	if err := os.Symlink(strings.Repeat("../", 32)+strings.TrimPrefix(outside, "/"), filepath.Join(vol, "rootfs/escape")); err != nil {
		t.Fatal(err)
	}
	src := dataDir(t)
	app := filepath.Join(t.TempDir(), "app.json")
	writeJSON(t, app, &rootfs.App{Volumes: []rootfs.Volume{{Source: src, Destination: "/escape/x"}}})
	r := moor(t, "spec", "--seed", vol, "--override", app, "--bundle", filepath.Join(t.TempDir(), "b"))
	if r.Code == 0 || !strings.Contains(r.Stderr, "leads out of the root") {
		t.Fatalf("spec with an escaping destination: %v", r)
	}
	dir := seededBundle(t, id, vol, nil)
	editSpec(t, dir, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/escape/x", Type: "bind", Source: src, Options: []string{"rbind"}})
	})
	t.Cleanup(func() { moor(t, "delete", "--force", id) })
	r = moor(t, "create", "--bundle", dir, id)
	if r.Code == 0 || !strings.Contains(r.Stderr, "leads out of the root") {
		t.Fatalf("create with an escaping destination: %v", r)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("something was made outside the root: %v", entries)
	}
	checkScratchGone(t, id)
}

// TestOverlayCleanedAfterKilledCreate SIGKILLs `moor create` while the
// overlay is mounted (a createRuntime hook holds it there); `delete
// --force` then finds and removes it.
func TestOverlayCleanedAfterKilledCreate(t *testing.T) {
	id := taskID(t)
	vol := newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{Cmd: []string{"/bin/true"}}})
	dir := seededBundle(t, id, vol, &rootfs.App{RootWritable: true})
	hookDir := t.TempDir()
	ready, fifo := filepath.Join(hookDir, "ready"), filepath.Join(hookDir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	editSpec(t, dir, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{
			Path: "/bin/sh", Args: []string{"sh", "-c", fmt.Sprintf("echo > %s; read x < %s", ready, fifo)},
		}}}
	})
	t.Cleanup(func() { moor(t, "delete", "--force", id) })
	create := moorCmd("create", "--bundle", dir, id)
	if err := create.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the hook to run", func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
	overlay := filepath.Join(stateRoot, ".scratch", "default", id, "root")
	if !strings.Contains(readFile(t, "/proc/self/mountinfo"), " "+overlay+" ") {
		t.Fatalf("overlay not mounted on %s while create runs", overlay)
	}
	if err := create.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = create.Wait()
	release, err := os.OpenFile(fifo, os.O_WRONLY, 0) // lets the orphaned hook end
	if err != nil {
		t.Fatal(err)
	}
	release.Close()
	if r := moor(t, "delete", "--force", id); r.Code != 0 {
		t.Fatalf("delete --force after a killed create: %v", r)
	}
	checkScratchGone(t, id)
	if _, err := os.Stat(filepath.Join(vol, "rootfs/written")); err == nil {
		t.Error("the volume was written")
	}
}

// TestHostRoot gives a task without a root volume the host's root,
// read-only. It only reads: a root that turned out writable must not be
// written by a test.
func TestHostRoot(t *testing.T) {
	id := taskID(t)
	data := dataDir(t)
	app := filepath.Join(t.TempDir(), "app.json")
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	writeJSON(t, app, &rootfs.App{
		Args:    []string{sh, "-c", "cat /proc/self/mountinfo > /tmp/mountinfo"},
		Volumes: []rootfs.Volume{{Source: data, Destination: "/tmp"}}, // /tmp exists in every root
	})
	dir := filepath.Join(t.TempDir(), "bundle")
	mustMoor(t, "spec", "--host-root", "--override", app, "--bundle", dir)
	editSpec(t, dir, func(s *specs.Spec) { s.Linux.CgroupsPath = rootfsCgroupParent + "/" + id })
	if r := runTask(t, id, dir); r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	rootOpts := ""
	for _, line := range strings.Split(readFile(t, filepath.Join(data, "mountinfo")), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
			rootOpts = f[5]
		}
	}
	if !strings.HasPrefix(rootOpts, "ro") {
		t.Errorf("the task's root is mounted %q, want read-only", rootOpts)
	}
	checkScratchGone(t, id)
}

// TestLoader takes a loader bundle's spec as the template and mounts the
// root volume read-only at /mnt in it.
func TestLoader(t *testing.T) {
	id := taskID(t)
	vol := newVolume(t, nil)
	writeFile(t, filepath.Join(vol, "rootfs/guest-marker"), "guest\n")
	loader := newBundle(t, "/bin/sh", "-c", "cat /mnt/rootfs/guest-marker > /tmp/out; touch /mnt/x 2>/dev/null && echo rw >> /tmp/out || echo ro >> /tmp/out")
	data := dataDir(t)
	loader.Spec.Mounts = append(loader.Spec.Mounts, specs.Mount{Destination: "/tmp", Type: "bind", Source: data, Options: []string{"rbind", "rw"}})
	loader.write(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	mustMoor(t, "spec", "--loader", loader.Dir, "--seed", vol, "--bundle", dir)
	editSpec(t, dir, func(s *specs.Spec) { s.Linux.CgroupsPath = rootfsCgroupParent + "/" + id })
	if r := runTask(t, id, dir); r.Code != 0 {
		t.Fatalf("run: %v", r)
	}
	if got := readFile(t, filepath.Join(data, "out")); got != "guest\nro\n" {
		t.Errorf("loader task wrote %q, want the guest's marker, read-only", got)
	}
	checkScratchGone(t, id)
}
