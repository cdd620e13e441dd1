package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/lifecycle"
	"github.com/lf-edge/moor/rootfs"
)

// badInputDir holds the bad-input corpus: one case per file.
const badInputDir = "testdata/badinput"

// badCase is one file of the corpus, NAME.case:
//
//	# what is wrong, in words
//	kind: spec|config|id|ref|vm|app|image|update
//	want: a substring the error must hold (it names the problem)
//	flags: global flags before the verb (optional)
//	needs: guards the build must pass first (optional; see guard)
//	---
//	the input
//
// The input is, by kind: spec, a JSON merge patch (RFC 7386) on the
// harness's spec, then create; config, the whole config.json, then
// create; id, the task ID as a JSON string, for create; ref, moor's
// arguments as a JSON array; vm, a VM description for vm spec
// --host-root; app, an APP.json for spec --seed --override; image, a seed
// volume's image-config.json for spec --seed; update, linux.resources
// JSON for update -r of a created task. In the input and the flags,
// @ROOT@ is the busybox root, @CGPARENT@ the harness's cgroup parent,
// @ID@ the case's task ID, @TASK@ the created task's ID, @SELF@ the
// test's PID and @SPEC@ the harness's spec as JSON. The seed volume's
// root holds a relative symlink, /up -> ../../.., that climbs out of it.
type badCase struct {
	Name, Note, Kind, Want, Body string
	Flags, Needs                 []string
}

// loadBadCases reads the corpus.
func loadBadCases(t *testing.T) []badCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(badInputDir, "*.case"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []badCase
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		head, body, ok := strings.Cut(string(raw), "\n---\n")
		c := badCase{Name: strings.TrimSuffix(filepath.Base(f), ".case"), Body: strings.TrimSuffix(body, "\n")}
		for _, line := range strings.Split(head, "\n") {
			key, value, _ := strings.Cut(line, ": ")
			switch key {
			case "kind":
				c.Kind = value
			case "want":
				c.Want = value
			case "flags":
				c.Flags = strings.Fields(value)
			case "needs":
				c.Needs = strings.Fields(value)
			default:
				if note, isNote := strings.CutPrefix(line, "# "); isNote {
					c.Note = note
				} else {
					ok = false
				}
			}
		}
		if !ok || c.Kind == "" || c.Want == "" {
			t.Fatalf("%s: want a header of kind:, want: (and flags:, needs:, # notes), then --- and the input", f)
		}
		cases = append(cases, c)
	}
	if len(cases) < 100 {
		t.Fatalf("the bad-input corpus in %s holds %d cases, want at least 100", badInputDir, len(cases))
	}
	return cases
}

// badEnv is what the cases share: a seed volume, a created task for
// update, and the guards' verdicts.
type badEnv struct {
	spec    []byte  // the harness's spec as JSON
	volume  string  // a seed volume with an image config that runs true
	updated *bundle // the created task update cases act on
	limits  map[string]string
	guards  map[string]string // need → why the build fails it ("" when it passes)
}

// TestBadInput runs the bad-input corpus: each case must end in a clear
// error naming the problem, exit ≠ 0, no panic, no hang, and nothing
// left (state, scratch, cgroups, mounts, output files). A control of each
// kind first shows that the unbroken input is accepted, so that a case
// fails for its own fault.
func TestBadInput(t *testing.T) {
	cases := loadBadCases(t)
	e := &badEnv{guards: map[string]string{}}
	e.spec = e.baseSpec(t)
	e.volume = newVolume(t, &rootfs.ImageConfig{Config: rootfs.ImageRuntimeConfig{Cmd: []string{"true"}}})
	if err := os.Symlink("../../..", filepath.Join(e.volume, rootfs.RootfsDir, "up")); err != nil {
		t.Fatal(err)
	}
	e.updated = newBundle(t, "sleep", "1000")
	createTask(t, e.updated)
	e.limits = e.readLimits(t)
	e.controls(t)
	kinds := map[string]int{}
	for _, c := range cases {
		kinds[c.Kind]++
		t.Run(c.Name, func(t *testing.T) { e.run(t, c) })
	}
	t.Logf("figure: %d bad inputs (by kind %v)", len(cases), kinds)
}

func (e *badEnv) baseSpec(t *testing.T) []byte {
	t.Helper()
	b := newBundle(t, "true")
	raw, err := json.Marshal(b.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// controls runs the unbroken input of every kind, which must pass.
func (e *badEnv) controls(t *testing.T) {
	t.Helper()
	good := map[string]string{
		"spec": "{}", "config": "@SPEC@", "id": `"@ID@"`, "ref": `["list"]`,
		"vm":     `{"name": "vmgood", "memoryMiB": 128, "hypervisor": "tcg"}`,
		"app":    `{"memoryMiB": 64, "cpus": 1}`,
		"image":  `{"config": {"Cmd": ["true"]}}`,
		"update": `{"memory": {"limit": 67108864}}`,
	}
	for kind, body := range good {
		t.Run("control-"+kind, func(t *testing.T) {
			id := taskID(t)
			in := e.prepare(t, badCase{Kind: kind, Body: body}, id)
			t.Cleanup(func() { moor(t, "delete", "--force", in.task) })
			if r := moor(t, in.args...); r.Code != 0 {
				t.Fatalf("the unbroken input of kind %s is refused: %v", kind, r)
			}
		})
	}
}

// expand replaces the corpus's placeholders.
func (e *badEnv) expand(s, id string) string {
	return strings.NewReplacer("@ROOT@", busyboxRoot, "@CGPARENT@", cgroupParent, "@ID@", id,
		"@TASK@", e.updated.ID, "@SELF@", strconv.Itoa(os.Getpid()), "@SPEC@", string(e.spec)).Replace(s)
}

// prepared is a case made ready to run.
type prepared struct {
	args []string // moor's arguments, global flags first
	out  string   // an output directory that must stay empty, if any
	task string   // the task a create would make, if any
}

// prepare writes the case's files and says how to run it.
func (e *badEnv) prepare(t *testing.T, c badCase, id string) prepared {
	t.Helper()
	var args []string
	for _, f := range c.Flags {
		args = append(args, e.expand(f, id))
	}
	dir := filepath.Join(scratch, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	input := filepath.Join(dir, "input.json")
	out := filepath.Join(dir, "out")
	body := e.expand(c.Body, id)
	writeFile(t, input, body)
	create := func(name string) prepared {
		return prepared{args: append(args, "create", "--bundle", dir, name), task: name}
	}
	switch c.Kind {
	case "spec":
		writeFile(t, filepath.Join(dir, "config.json"), string(mergePatch(t, e.spec, []byte(body))))
		return create(id)
	case "config":
		writeFile(t, filepath.Join(dir, "config.json"), body)
		return create(id)
	case "id":
		var name string
		if err := json.Unmarshal([]byte(body), &name); err != nil {
			t.Fatalf("id case: the input must be a JSON string: %v", err)
		}
		writeFile(t, filepath.Join(dir, "config.json"), string(e.spec))
		return create(name)
	case "ref":
		var list []string
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("ref case: the input must be a JSON array of strings: %v", err)
		}
		return prepared{args: append(args, list...)}
	case "vm":
		return prepared{args: append(args, "vm", "spec", "--vm", input, "--host-root", "--bundle", out, "--cgroups-path", cgroupParent+"/"+id), out: out}
	case "app":
		return prepared{args: append(args, "spec", "--seed", e.volume, "--override", input, "--bundle", out), out: out}
	case "image":
		vol := newVolume(t, nil)
		writeFile(t, filepath.Join(vol, rootfs.ImageConfigFile), body)
		return prepared{args: append(args, "spec", "--seed", vol, "--bundle", out), out: out}
	case "update":
		return prepared{args: append(args, "update", "--resources", input, e.updated.ID)}
	}
	t.Fatalf("unknown kind %q", c.Kind)
	return prepared{}
}

// run runs one case.
func (e *badEnv) run(t *testing.T, c badCase) {
	for _, need := range c.Needs {
		if why := e.guard(t, need); why != "" {
			t.Fatalf("not run, to keep tasks out of cgroups outside the test's parent: %s", why)
		}
	}
	id := taskID(t)
	in := e.prepare(t, c, id)
	watch := e.cgroupsOf(t, c, id)
	before := e.snapshot(t, watch)
	r, hung := runKilled(t, moorCmd(in.args...), time.Minute)
	t.Logf("%v", r)
	if r.Code == 0 && in.task != "" && lifecycle.CheckID(in.task) == nil {
		scrub(t, in.task, watch...)
	}
	switch {
	case hung:
		t.Errorf("moor %s hung (killed after a minute)", strings.Join(in.args, " "))
	case strings.Contains(r.Stderr, "panic:") || strings.Contains(r.Stderr, "goroutine "):
		t.Errorf("moor panicked on %s: %s", c.Note, r.Stderr)
	case r.Code == 0:
		t.Errorf("%s is accepted: %v", c.Note, r)
	case !strings.Contains(r.Stderr, c.Want):
		t.Errorf("%s: %v, want an error naming %q", c.Note, r, c.Want)
	}
	if after := e.snapshot(t, watch); !slices.Equal(before, after) {
		t.Errorf("%s left things behind:\n  before: %v\n  after:  %v", c.Note, before, after)
	}
	if in.out != "" {
		_ = filepath.WalkDir(in.out, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("%s left an output file: %s", c.Note, p)
			}
			return nil
		})
	}
	if c.Kind == "update" {
		e.checkLimits(t)
	}
}

// cgroupsOf are the cgroups a case must not make: the task's default one
// and the spec's cgroupsPath, cleaned, when it is absolute.
func (e *badEnv) cgroupsOf(t *testing.T, c badCase, id string) []string {
	t.Helper()
	out := []string{cgroupParent + "/" + id}
	if c.Kind != "spec" {
		return out
	}
	var s struct {
		Linux struct {
			CgroupsPath any `json:"cgroupsPath"`
		} `json:"linux"`
	}
	_ = json.Unmarshal(mergePatch(t, e.spec, []byte(e.expand(c.Body, id))), &s)
	if p, ok := s.Linux.CgroupsPath.(string); ok && path.IsAbs(p) {
		out = append(out, path.Clean(p))
	}
	return out
}

// snapshot lists what a case could leave: task and scratch directories,
// the harness's cgroup parent and its children and the watched cgroups in
// every hierarchy, processes in the watched cgroups, and mounts under the
// test's directory.
func (e *badEnv) snapshot(t *testing.T, watch []string) []string {
	t.Helper()
	var out []string
	for _, d := range []string{filepath.Join(stateRoot, "default"), filepath.Join(stateRoot, ".scratch", "default")} {
		entries, _ := os.ReadDir(d)
		for _, en := range entries {
			out = append(out, filepath.Join(d, en.Name()))
		}
	}
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hier {
		for _, cg := range append([]string{cgroupParent}, watch...) {
			if _, err := os.Stat(filepath.Join(h, cg)); err == nil {
				out = append(out, "cgroup "+filepath.Join(h, cg))
			}
		}
		entries, _ := os.ReadDir(filepath.Join(h, cgroupParent))
		for _, en := range entries {
			if en.IsDir() {
				out = append(out, "cgroup "+filepath.Join(h, cgroupParent, en.Name()))
			}
		}
	}
	for _, pid := range processesIn(watch...) {
		out = append(out, fmt.Sprintf("process %d", pid))
	}
	for _, m := range mountsUnder(t, filepath.Dir(stateRoot)) {
		out = append(out, "mount "+m)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// limitFiles are the cgroup files update cases must leave as they were.
var limitFiles = [][2]string{{"memory", "memory.limit_in_bytes"}, {"cpu", "cpu.shares"}, {"cpu", "cpu.cfs_quota_us"}, {"cpuset", "cpuset.cpus"}, {"pids", "pids.max"}}

func (e *badEnv) readLimits(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range limitFiles {
		m[f[1]] = cgroupFile(t, f[0], e.updated.ID, f[1])
	}
	return m
}

// checkLimits fails if an update case changed a limit of the task.
func (e *badEnv) checkLimits(t *testing.T) {
	t.Helper()
	if now := e.readLimits(t); !maps.Equal(now, e.limits) {
		t.Errorf("a refused update changed the task's limits: %v, were %v", now, e.limits)
	}
}

// guard says why the build under test must not run cases that need
// need, or "" when they are safe. Such cases would, on a build without
// the behaviour, make a cgroup outside the test's parent. Each guard is a
// probe whose worst outcome stays inside the parent: it asks for what
// the guarded cases ask for, in a form that, if accepted, lands there.
func (e *badEnv) guard(t *testing.T, need string) string {
	t.Helper()
	if why, done := e.guards[need]; done {
		return why
	}
	id := "guard-" + need + "-" + strconv.Itoa(os.Getpid())
	var flags []string
	cg := ""
	switch need {
	case "cgroup-dotdot": // .. refused: a path that climbs back into the parent
		cg = cgroupParent + "/" + id + "/../" + id
	case "cgroup-parent": // confinement: a path beside a --cgroup-parent inside ours
		flags, cg = []string{"--cgroup-parent", cgroupParent + "/" + id + "-parent"}, cgroupParent+"/"+id
	default:
		t.Fatalf("unknown guard %q", need)
	}
	var s map[string]any
	if err := json.Unmarshal(e.spec, &s); err != nil {
		t.Fatal(err)
	}
	s["linux"].(map[string]any)["cgroupsPath"] = cg
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, "config.json"), s)
	r := moor(t, append(flags, "create", "--bundle", dir, id)...)
	why := ""
	if r.Code == 0 {
		why = fmt.Sprintf("guard %s: moor accepted cgroupsPath %s %v; it must refuse it first", need, cg, flags)
	}
	scrub(t, id, cgroupParent+"/"+id, cgroupParent+"/"+id+"-parent")
	e.guards[need] = why
	return why
}

// mergePatch applies a JSON merge patch (RFC 7386) to doc, keeping
// numbers as written.
func mergePatch(t *testing.T, doc, patch []byte) []byte {
	t.Helper()
	decode := func(b []byte) any {
		var v any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("merge patch: %v", err)
		}
		return v
	}
	out, err := json.Marshal(merge(decode(doc), decode(patch)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func merge(doc, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	d, ok := doc.(map[string]any)
	if !ok {
		d = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = merge(d[k], v)
		}
	}
	return d
}
