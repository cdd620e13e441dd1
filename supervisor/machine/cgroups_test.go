package machine

import (
	"slices"
	"strings"
	"testing"
)

const procCgroups = `#subsys_name	hierarchy	num_cgroups	enabled
cpuset	0	1	1
cpu	0	1	1
memory	0	1	1
pids	0	1	1
rdma	0	1	0
`

const procFilesystems = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tcgroup\nnodev\tcgroup2\n\text4\n"

func TestReadCgroupSupport(t *testing.T) {
	for _, c := range []struct {
		name, filesystems, cmdline string
		v2                         bool
		controllers                []string
	}{
		{"both", procFilesystems, "console=ttyS0", true, []string{"cpuset", "cpu", "memory", "pids"}},
		{"no cgroup2", "nodev\tcgroup\n", "", false, []string{"cpuset", "cpu", "memory", "pids"}},
		{"no v1 fs", "nodev\tcgroup2\n", "", true, nil},
		{"cgroup_no_v1=all", procFilesystems, "cgroup_no_v1=all", true, nil},
		{"cgroup_no_v1 list", procFilesystems, "cgroup_no_v1=memory,pids", true, []string{"cpuset", "cpu"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ReadCgroupSupport(strings.NewReader(c.filesystems), strings.NewReader(procCgroups), c.cmdline)
			if err != nil {
				t.Fatal(err)
			}
			if s.V2 != c.v2 || !slices.Equal(s.Controllers, c.controllers) {
				t.Errorf("got %+v, want v2 %v and controllers %v", s, c.v2, c.controllers)
			}
		})
	}
}

func TestChooseCgroupMode(t *testing.T) {
	both := CgroupSupport{V2: true, Controllers: []string{"memory"}}
	onlyV1 := CgroupSupport{Controllers: []string{"memory"}}
	onlyV2 := CgroupSupport{V2: true}
	for _, c := range []struct {
		name    string
		s       CgroupSupport
		cmdline string
		want    CgroupMode
		why     string
	}{
		{"default", both, "console=ttyS0", CgroupV2, "the default"},
		{"asked v1", both, "moor.cgroup=v1", CgroupV1, "moor.cgroup=v1"},
		{"asked hybrid", both, "quiet moor.cgroup=hybrid", CgroupHybrid, "moor.cgroup=hybrid"},
		{"asked v2", both, "moor.cgroup=v2", CgroupV2, "moor.cgroup=v2"},
		{"the last wins", both, "moor.cgroup=v1 moor.cgroup=hybrid", CgroupHybrid, "moor.cgroup=hybrid"},
		{"linuxkit's v1", both, "linuxkit.unified_cgroup_hierarchy=0", CgroupV1, "linuxkit"},
		{"unknown word", both, "moor.cgroup=v3", CgroupV2, "is not v1, hybrid or v2"},
		{"default without cgroup2", onlyV1, "", CgroupV1, "no cgroup2"},
		{"hybrid without cgroup2", onlyV1, "moor.cgroup=hybrid", CgroupV1, "no cgroup2"},
		{"v1 without v1 controllers", onlyV2, "moor.cgroup=v1", CgroupV2, "no v1 controllers"},
		{"hybrid without v1 controllers", onlyV2, "moor.cgroup=hybrid", CgroupV2, "no v1 controllers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, why := ChooseCgroupMode(c.s, c.cmdline)
			if got != c.want || !strings.Contains(why, c.why) {
				t.Errorf("got %v (%s), want %v (%s)", got, why, c.want, c.why)
			}
		})
	}
}

func TestCgroupMounts(t *testing.T) {
	targets := func(ms []Mount) (out []string) {
		for _, m := range ms {
			out = append(out, m.FSType+":"+m.Target+":"+m.Data)
		}
		return out
	}
	for _, c := range []struct {
		mode CgroupMode
		want []string
	}{
		{CgroupV2, []string{"cgroup2:/sys/fs/cgroup:"}},
		{CgroupV1, []string{"tmpfs:/sys/fs/cgroup:mode=0755", "cgroup:/sys/fs/cgroup/cpu:cpu", "cgroup:/sys/fs/cgroup/memory:memory"}},
		{CgroupHybrid, []string{"tmpfs:/sys/fs/cgroup:mode=0755", "cgroup:/sys/fs/cgroup/cpu:cpu", "cgroup:/sys/fs/cgroup/memory:memory",
			"cgroup2:/sys/fs/cgroup/unified:"}},
	} {
		if got := targets(CgroupMounts(c.mode, []string{"cpu", "memory"})); !slices.Equal(got, c.want) {
			t.Errorf("%v: %q, want %q", c.mode, got, c.want)
		}
	}
}

// TestCgroupsStep: the step reads the kernel's support, says the mode and
// why, and mounts its hierarchies below the machine's root.
func TestCgroupsStep(t *testing.T) {
	m, fs, log := newTestMachine(t, "console=ttyS0 moor.cgroup=hybrid")
	writeFiles(t, m.root, map[string]string{"proc/filesystems": procFilesystems, "proc/cgroups": procCgroups})
	if err := m.cgroups(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"mount cgroup_root /sys/fs/cgroup tmpfs 0xe mode=0755",
		"mount cpuset /sys/fs/cgroup/cpuset cgroup 0xe cpuset",
		"mount cpu /sys/fs/cgroup/cpu cgroup 0xe cpu",
		"mount memory /sys/fs/cgroup/memory cgroup 0xe memory",
		"mount pids /sys/fs/cgroup/pids cgroup 0xe pids",
		"mount cgroup2 /sys/fs/cgroup/unified cgroup2 0xe ",
	}
	if got := fs.got(); !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(log.String(), `msg="cgroup mode" mode=hybrid why="moor.cgroup=hybrid"`) {
		t.Errorf("the log does not say the mode and why:\n%s", log)
	}
}
