package rootfs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/rootfs"
)

// seedSpec is a seed as cmd/moor's default spec gives it: runc's example
// plus the minimum viable resources.
func seedSpec() *specs.Spec {
	s := specconv.Example()
	limit, shares := int64(256<<20), uint64(1024)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	return s
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzApp: ParseApp and ApplyApp never panic and refuse with
// ErrInvalidApp; the seed is never changed; what they accept is a spec
// the minimum viable spec rule accepts, whose limit is exactly memoryMiB
// MiB, whose quota is exactly cpus periods and within the kernel's bound,
// and that has every other setting of the app.
func FuzzApp(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		app, err := rootfs.ParseApp(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, rootfs.ErrInvalidApp) {
				t.Fatalf("ParseApp: %v: not an ErrInvalidApp", err)
			}
			return
		}
		seed := seedSpec()
		before := marshal(t, seed)
		s, err := rootfs.ApplyApp(seed, app)
		if !bytes.Equal(before, marshal(t, seed)) {
			t.Fatal("ApplyApp changed the seed")
		}
		if err != nil {
			if !errors.Is(err, rootfs.ErrInvalidApp) {
				t.Fatalf("ApplyApp: %v: not an ErrInvalidApp", err)
			}
			return
		}
		if err := lifecycle.RequireMinimumSpec(s); err != nil {
			t.Fatalf("ApplyApp(%s) gave a spec the rule refuses: %v", data, err)
		}
		checkResources(t, app, s.Linux.Resources)
		checkAppSettings(t, app, seed, s)
	})
}

func checkResources(t *testing.T, app *rootfs.App, r *specs.LinuxResources) {
	t.Helper()
	if app.MemoryMiB != nil {
		m := r.Memory
		limit := *m.Limit
		if limit <= 0 || limit>>20 != *app.MemoryMiB || limit&(1<<20-1) != 0 {
			t.Fatalf("memoryMiB %d gave a limit of %d bytes", *app.MemoryMiB, limit)
		}
		if m.Swap != nil && *m.Swap != -1 && *m.Swap < limit || m.Reservation != nil && *m.Reservation > limit {
			t.Fatalf("swap %v or reservation %v do not fit the limit %d", m.Swap, m.Reservation, limit)
		}
	}
	if app.CPUs != nil {
		q, p := *r.CPU.Quota, *r.CPU.Period
		if p != 100000 || q <= 0 || q%100000 != 0 || q/100000 != int64(*app.CPUs) || q > 1<<44-1 {
			t.Fatalf("cpus %d gave a quota of %d per %d µs", *app.CPUs, q, p)
		}
	}
	if app.CPUSet != "" && r.CPU.Cpus != app.CPUSet {
		t.Fatalf("cpuset %q gave %q", app.CPUSet, r.CPU.Cpus)
	}
}

func checkAppSettings(t *testing.T, app *rootfs.App, seed, s *specs.Spec) {
	t.Helper()
	p := s.Process
	switch {
	case len(app.Args) > 0 && !slices.Equal(p.Args, app.Args):
		t.Fatalf("args %q, want the app's %q", p.Args, app.Args)
	case app.Cwd != "" && p.Cwd != app.Cwd:
		t.Fatalf("cwd %q, want %q", p.Cwd, app.Cwd)
	case app.Hostname != "" && s.Hostname != app.Hostname:
		t.Fatalf("hostname %q, want %q", s.Hostname, app.Hostname)
	case len(s.Mounts) != len(seed.Mounts)+len(app.Volumes):
		t.Fatalf("%d mounts, want the seed's %d and %d volumes", len(s.Mounts), len(seed.Mounts), len(app.Volumes))
	case app.RootWritable != (s.Annotations[rootfs.WritableAnnotation] == "true") || app.RootWritable == s.Root.Readonly:
		t.Fatalf("rootWritable %v gave root %+v and annotation %q", app.RootWritable, s.Root, s.Annotations[rootfs.WritableAnnotation])
	}
	for _, kv := range app.Env {
		if !slices.Contains(p.Env, lastOf(app.Env, kv)) {
			t.Fatalf("env %q: %q missing from %q", app.Env, kv, p.Env)
		}
	}
	for k, v := range app.Annotations {
		if s.Annotations[k] != v {
			t.Fatalf("annotation %s=%q, want %q", k, s.Annotations[k], v)
		}
	}
	for host, d := range app.NetDevices {
		if s.Linux.NetDevices[host].Name != d.Name {
			t.Fatalf("netDevices %s: %+v, want %+v", host, s.Linux.NetDevices[host], d)
		}
	}
}

// lastOf is the last entry of env with kv's name: the one that wins.
func lastOf(env []string, kv string) string {
	name, _, _ := strings.Cut(kv, "=")
	for i := len(env) - 1; i >= 0; i-- {
		if n, _, _ := strings.Cut(env[i], "="); n == name {
			return env[i]
		}
	}
	return kv
}

// FuzzImageConfig: ParseImageConfig and FromImageConfig never panic; the
// template is never changed; an accepted config gives args Entrypoint then
// Cmd, an absolute cwd, the image's Env by name (the last entry of a name
// wins, no name twice), uid and gids the kernel takes (a numeric User is
// that uid, a name its passwd entry's), the Labels and StopSignal as
// annotations, and the root read-only.
func FuzzImageConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, passwd, group string) {
		img, err := rootfs.ParseImageConfig(bytes.NewReader(data))
		if err != nil {
			return
		}
		tmpl := seedSpec()
		before := marshal(t, tmpl)
		s, err := rootfs.FromImageConfig(tmpl, img, "/vol/rootfs", strings.NewReader(passwd), strings.NewReader(group))
		if !bytes.Equal(before, marshal(t, tmpl)) {
			t.Fatal("FromImageConfig changed the template")
		}
		if err != nil {
			return
		}
		c, p := img.Config, s.Process
		switch {
		case !slices.Equal(p.Args, append(slices.Clone(c.Entrypoint), c.Cmd...)):
			t.Fatalf("args %q from entrypoint %q and cmd %q", p.Args, c.Entrypoint, c.Cmd)
		case !path.IsAbs(p.Cwd) || c.WorkingDir != "" && p.Cwd != c.WorkingDir:
			t.Fatalf("cwd %q from WorkingDir %q", p.Cwd, c.WorkingDir)
		case s.Root == nil || s.Root.Path != "/vol/rootfs" || !s.Root.Readonly:
			t.Fatalf("root %+v", s.Root)
		case c.StopSignal != "" && s.Annotations[rootfs.StopSignalAnnotation] != c.StopSignal:
			t.Fatalf("stop signal %q gave annotations %v", c.StopSignal, s.Annotations)
		}
		checkEnv(t, c.Env, p.Env)
		checkUser(t, c.User, passwd, p.User)
		for k, v := range c.Labels {
			if k != rootfs.StopSignalAnnotation && s.Annotations[k] != v {
				t.Fatalf("label %s=%q gave %q", k, v, s.Annotations[k])
			}
		}
	})
}

func checkEnv(t *testing.T, image, env []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if seen[name] {
			t.Fatalf("%s twice in %q", name, env)
		}
		seen[name] = true
	}
	for _, kv := range image {
		if want := lastOf(image, kv); !slices.Contains(env, want) {
			t.Fatalf("image env %q: %q missing from %q", image, want, env)
		}
	}
}

func checkUser(t *testing.T, spec, passwd string, u specs.User) {
	t.Helper()
	for _, id := range append([]uint32{u.UID, u.GID}, u.AdditionalGids...) {
		if id > math.MaxInt32 {
			t.Fatalf("User %q gave id %d, past the kernel's", spec, id)
		}
	}
	uid, err := strconv.Atoi(spec)
	if err != nil {
		uid, err = passwdUID(spec, passwd)
	}
	if err == nil && int(u.UID) != uid {
		t.Fatalf("User %q gave uid %d, want %d", spec, u.UID, uid)
	}
}

// passwdUID is the uid of the first passwd entry of a user name (any
// field that does not parse is 0, as the runtime's parser reads it).
func passwdUID(name, passwd string) (int, error) {
	if strings.Contains(name, ":") {
		return 0, errors.New("not a bare name")
	}
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if f[0] == name && f[0] != "" {
			if len(f) < 3 {
				return 0, nil
			}
			uid, _ := strconv.Atoi(f[2])
			return uid, nil
		}
	}
	return 0, errors.New("no entry")
}
