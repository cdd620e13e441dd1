package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lf-edge/moor/cgroup"
	"github.com/lf-edge/moor/internal/containerd"
	"github.com/lf-edge/moor/internal/ociimage"
)

// crictlModule is the CRI client the test builds from the Go module proxy.
const crictlModule = "sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0"

// criNamespace is the containerd namespace of the CRI plugin.
const criNamespace = "k8s.io"

// pauseImage is the pod sandboxes' image: busyboxRoot with a command that
// sleeps and exits 0 on TERM.
const pauseImage = "docker.io/library/pause:moor-test"

// TestCRI is the Kubernetes node path, for each of ctrReleases (Debian's
// containerd 1.6 with a version 2 config, 2.4.2 with a version 3 one): a
// private containerd with the CRI plugin and a runtime handler "moor"
// (runtime_type io.containerd.runc.v2, options.BinaryName = moor), driven
// by crictl. A host-network pod (no CNI) whose sandbox is a locally made pause image, and a busybox container in
// it, both run through the moor handler, in cgroups under cgroupParent;
// exec, logs, stop and removal; then nothing is left.
func TestCRI(t *testing.T) {
	crictlBin := buildCrictl(t)
	for _, rel := range ctrReleases {
		t.Run(rel.Name, func(t *testing.T) { testCRI(t, rel, crictlBin) })
	}
}

func testCRI(t *testing.T, rel ctrRelease, crictlBin string) {
	e := newCRIEnv(t, rel, crictlBin)
	c, cri := e.c, e.cri
	pod := cri.must(t, "runp", "--runtime", "moor", e.podConfig)
	c.ids = append(c.ids, pod)
	var sb criInspect
	cri.inspect(t, &sb, "inspectp", pod)
	if sb.Status.State != "SANDBOX_READY" || sb.Status.RuntimeHandler != "moor" {
		t.Fatalf("pod sandbox: state %s, runtime handler %q; want SANDBOX_READY through moor", sb.Status.State, sb.Status.RuntimeHandler)
	}
	c.checkMoorTask(t, pod, sb.Info.PID, e.podParent)
	c.checkShim(t, criNamespace+"/"+pod)

	ctr := cri.must(t, "create", pod, e.ctrConfig, e.podConfig)
	c.ids = append(c.ids, ctr)
	cri.must(t, "start", ctr)
	var ci criInspect
	cri.inspect(t, &ci, "inspect", ctr)
	if ci.Status.State != "CONTAINER_RUNNING" {
		t.Fatalf("container state %s, want CONTAINER_RUNNING", ci.Status.State)
	}
	c.checkMoorTask(t, ctr, ci.Info.PID, e.podParent)

	if out := cri.must(t, "exec", ctr, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline"); !strings.HasPrefix(out, "exec-ok") || !strings.Contains(out, "trap") {
		t.Fatalf("crictl exec printed %q, want exec-ok and the container's PID 1", out)
	}
	waitFor(t, 10*time.Second, "the container's log", func() bool {
		return strings.Contains(cri.must(t, "logs", ctr), "started")
	})

	// The shim runs `moor kill --all ID 9` once the container's init has
	// exited on TERM.
	waitCatches(t, ci.Info.PID, unix.SIGTERM)
	cri.must(t, "stop", "--timeout", "10", ctr)
	cri.inspect(t, &ci, "inspect", ctr)
	if ci.Status.State != "CONTAINER_EXITED" || ci.Status.ExitCode != 0 {
		t.Fatalf("after stop: state %s, exit code %d; want CONTAINER_EXITED, 0", ci.Status.State, ci.Status.ExitCode)
	}
	cri.must(t, "rm", ctr)
	cri.must(t, "stopp", pod)
	cri.must(t, "rmp", pod)
	e.checkNothingLeft(t)
}

// criEnv is a private containerd with the CRI plugin and the moor
// handler, its images, crictl, and the pod's and container's configs.
type criEnv struct {
	c                    *ctrEnv
	cri                  *crictl
	podParent            string // the pod's cgroup parent
	podConfig, ctrConfig string // crictl's config files
}

func newCRIEnv(t *testing.T, rel ctrRelease, crictlBin string) *criEnv {
	t.Helper()
	c := newCtr(t, rel, &containerd.CRI{
		SandboxImage: pauseImage,
		Runtimes:     []containerd.Runtime{{Name: "moor", BinaryName: moorBin}},
	})
	c.importImage(t, criNamespace, ociimage.Image{Name: pauseImage, Env: []string{"PATH=/bin"},
		Entrypoint: []string{"sh", "-c", `trap "exit 0" TERM; sleep 2147483647 & wait`}})
	c.importImage(t, criNamespace, ociimage.Image{Name: busyboxImage, Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}})
	e := &criEnv{c: c, cri: &crictl{bin: crictlBin, socket: "unix://" + c.d.Socket()}, podParent: cgroupParent + "/" + taskID(t)}
	dir := string(c.d.Layout)
	e.podConfig = writeCRIConfig(t, dir, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": "moor-pod", "namespace": "moor-test", "uid": "moor-pod-uid"},
		"log_directory": filepath.Join(dir, "pod-logs"),
		"linux": map[string]any{
			"cgroup_parent":    e.podParent,
			"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}}, // host network: no CNI
		},
	})
	e.ctrConfig = writeCRIConfig(t, dir, "container.json", map[string]any{
		"metadata": map[string]any{"name": "busybox"},
		"image":    map[string]any{"image": busyboxImage},
		"command":  []string{"sh", "-c", `echo started; trap "exit 0" TERM; sleep 1000 & wait`},
		"log_path": "busybox.log",
	})
	return e
}

// checkNothingLeft checks that crictl lists nothing, containerd holds
// nothing, and no task's cgroup nor the pod's cgroup parent is left.
func (e *criEnv) checkNothingLeft(t *testing.T) {
	t.Helper()
	if out := e.cri.must(t, "pods", "-q") + e.cri.must(t, "ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl still lists %q", out)
	}
	e.c.checkNothingLeft(t, criNamespace)
	hier, err := cgroup.Hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range e.c.ids {
		if cgroup.Exists(hier, e.podParent+"/"+id) {
			t.Errorf("cgroup %s/%s left behind", e.podParent, id)
		}
	}
	if cgroup.Exists(hier, e.podParent) {
		t.Errorf("the pod's cgroup parent %s is left behind", e.podParent)
	}
}

// checkMoorTask checks that moor runs the CRI task id (its state under the
// handler's root says running, with the PID CRI reports) in a PID
// namespace of its own and a cgroup under parent.
func (c *ctrEnv) checkMoorTask(t *testing.T, id string, pid int, parent string) {
	t.Helper()
	cmd := exec.Command(moorBin, "--root", filepath.Join(c.d.RuntimeRoot("moor"), criNamespace), "state", id)
	r := runCmd(t, cmd)
	var st struct {
		Status string `json:"status"`
		PID    int    `json:"pid"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil || st.Status != "running" || st.PID != pid {
		t.Fatalf("moor state %s: %v; want running with pid %d", id, r, pid)
	}
	checkCtrTaskIsolated(t, pid, parent+"/"+id)
}

// criInspect is what the test reads of `crictl inspect` and `inspectp`.
type criInspect struct {
	Status struct {
		State          string `json:"state"`
		ExitCode       int    `json:"exitCode"`
		RuntimeHandler string `json:"runtimeHandler"` // a sandbox's
	} `json:"status"`
	Info struct {
		PID int `json:"pid"`
	} `json:"info"`
}

// crictl runs crictl against a private containerd's CRI plugin.
type crictl struct {
	bin, socket string
}

func (c *crictl) must(t *testing.T, args ...string) string {
	t.Helper()
	all := append([]string{"--config", "/dev/null", "--runtime-endpoint", c.socket, "--image-endpoint", c.socket, "--timeout", "30s"}, args...)
	r := runCmd(t, exec.Command(c.bin, all...))
	if r.Code != 0 {
		t.Fatalf("crictl %s: %v", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.Stdout)
}

func (c *crictl) inspect(t *testing.T, v any, verb, id string) {
	t.Helper()
	out := c.must(t, verb, "--output", "json", id)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decode crictl %s %s: %v: %s", verb, id, err, out)
	}
}

// buildCrictl builds crictl from the Go module proxy (the module cache
// when it holds it) into a directory of the test.
func buildCrictl(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	goInstall(t, bin, crictlModule)
	return filepath.Join(bin, "crictl")
}

// writeCRIConfig writes a crictl config file (pod or container) as JSON.
func writeCRIConfig(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
