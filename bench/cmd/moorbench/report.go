package main

import (
	"encoding/json"
	"fmt"
	"github.com/lf-edge/moor/internal/evebox"
	"io"
)

var runtimeOrder = []string{"moor", nameRunc, nameRuncSameLib, nameCrun}

// ratioTo are the runtimes moor's CLI times are divided by, in the table's
// columns and the JSON line's ratio_* keys.
var ratioTo = []string{nameCrun, nameRunc, nameRuncSameLib}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nmoorbench %s — %s\n", r.Date.Format("2006-01-02 15:04 UTC"), r.Machine)
	for _, n := range runtimeOrder {
		fmt.Fprintf(w, "  %-13s %s\n", n, r.Versions[n])
	}
	if r.Hybrid {
		fmt.Fprintln(w, "  cgroups: hybrid host; every runtime ran in a private mount namespace whose cgroup root holds only the v1 hierarchies (crun 1.8 refuses hybrid)")
	} else {
		fmt.Fprintln(w, "  cgroups: as the host has them")
	}
	fmt.Fprintln(w, "  state roots on a tmpfs (each runtime's default root is under /run, a tmpfs); bundle and rootfs in $TMPDIR")
	fmt.Fprintf(w, "  same busybox bundle (read-only root, pid/net/ipc/uts/mount namespaces, 64 MiB, 512 shares, cgroup under /moor-bench) for all;\n")
	fmt.Fprintf(w, "  %d rounds after %d warm-up, runtimes interleaved in rotating order; times in ms: median (min–max)\n", r.Rounds, r.Warm)
	fmt.Fprintln(w, "  cold: each call after 50 ms idle, so its v1 cgroup.procs write waits for an RCU grace period, as on a quiet device;")
	fmt.Fprintln(w, "  warm: the same pause, then a cgroup move of our own just before, as when tasks start back to back")
	fmt.Fprintln(w)

	fmt.Fprintf(w, "  %s: runc built at bench time from the libcontainer release moor links, with moor's build tags and flags\n", nameRuncSameLib)
	for _, m := range modes {
		fmt.Fprintf(w, "%-34s", "CLI, "+string(m))
		for _, n := range runtimeOrder {
			fmt.Fprintf(w, " %-20s", n)
		}
		for _, n := range ratioTo {
			fmt.Fprintf(w, " %9s", "moor/"+n)
		}
		fmt.Fprintln(w)
		cli := r.CLI[m]
		row := func(name string, get func(*cliResult) sample) {
			fmt.Fprintf(w, "%-34s", name)
			for _, n := range runtimeOrder {
				s := get(cli[n])
				fmt.Fprintf(w, " %-20s", fmt.Sprintf("%.1f (%.1f–%.1f)", s.median(), s.min(), s.max()))
			}
			m := get(cli["moor"]).median()
			for _, n := range ratioTo {
				fmt.Fprintf(w, " %9.2f", m/get(cli[n]).median())
			}
			fmt.Fprintln(w)
		}
		row("run /bin/true", func(c *cliResult) sample { return c.RunTrue })
		row("create+start+kill+delete (sleep)", func(c *cliResult) sample { return c.Lifecycle })
		for _, st := range lifecycleSteps {
			row("  "+st, func(c *cliResult) sample { return c.Steps[st] })
		}
		fmt.Fprintln(w)
	}

	if c := r.Ctr.RunRm; len(c) > 0 {
		fmt.Fprintf(w, "%-34s %-20s %-20s %9s\n", "containerd "+r.Ctr.Version, "moor", "runc", "moor/runc")
		fmt.Fprintf(w, "%-34s", "ctr run --rm /bin/true")
		for _, n := range ctrRuntimes {
			fmt.Fprintf(w, " %-20s", fmt.Sprintf("%.1f (%.1f–%.1f)", c[n].median(), c[n].min(), c[n].max()))
		}
		fmt.Fprintf(w, " %9.2f\n", c["moor"].median()/c["runc"].median())
		fmt.Fprintln(w, "  each: a container, an overlay snapshot, a shim (io.containerd.runc.v2, the runtime as --runc-binary),")
		fmt.Fprintln(w, "  create, start, wait, delete; the image is the same busybox root; no cold/warm settle (plain interleaving)")
		fmt.Fprintln(w)
	}

	in := r.Inproc
	fmt.Fprintf(w, "in-process (supervisor library, one reaper)\n")
	for _, m := range modes {
		st := in.StartMS[m]
		fmt.Fprintf(w, "  Create+Start until the process runs, %s: median %.1f ms, p95 %.1f ms (%.1f–%.1f), %d starts\n",
			m, st.median(), st.quantile(0.95), st.min(), st.max(), len(st))
	}
	if p := in.Profile; len(p[cold]) == len(profileSteps) && len(p[warm]) == len(profileSteps) {
		fmt.Fprintf(w, "  where a start goes (median ms of %d starts; libcontainer's debug messages mark the steps)\n", len(p[cold][0]))
		fmt.Fprintf(w, "    %-58s %7s %7s\n", "", "cold", "warm")
		for i, st := range profileSteps {
			fmt.Fprintf(w, "    %-58s %7.2f %7.2f\n", st.Name, p[cold][i].median(), p[warm][i].median())
		}
	}
	fmt.Fprintf(w, "  %-14s %10s %10s %10s %10s %8s %22s\n", "tasks held", "RSS KiB", "anon KiB", "file KiB", "Pss KiB", "threads", "extra procs per task")
	for _, n := range []string{"1", "10", "100"} {
		h := in.Held[n]
		fmt.Fprintf(w, "  %-14s %10d %10d %10d %10d %8d %22.2f\n", n, h.RSSKiB, h.AnonKiB, h.FileKiB, h.PssKiB, h.Threads, h.Extra)
	}
	fmt.Fprintf(w, "  100 tasks started concurrently: %.2f s (then %d threads); deleted concurrently: %.2f s\n",
		in.Start100S, in.Start100Thr, in.Delete100S)
	a := r.Anchor
	fmt.Fprintf(w, "\nhypervisor task (qemu under TCG, 128 MiB guest, paused)\n")
	fmt.Fprintf(w, "  anchor: RSS %d KiB (anonymous %d, binary and files %d), Pss %d KiB, %d threads\n",
		a.RSSKiB, a.AnonKiB, a.FileKiB, a.PssKiB, a.Threads)
	fmt.Fprintf(w, "  qemu (the device model, not the anchor): RSS %d KiB\n", a.QemuRSSKiB)
	fmt.Fprintf(w, "  reference: containerd's runc shim costs per task 13.5 MiB RSS (3 MiB Pss), 12 threads\n\n")

	for _, t := range r.Trees {
		fmt.Fprintf(w, "a tree of %d services on the host, first process to every service running (services: sh waiting)\n", t.N)
		fmt.Fprintf(w, "  moor supervise:       %6.2f s, resident besides the services: %6d KiB (the supervisor)\n", t.MoorS, t.MoorRSSKiB)
		fmt.Fprintf(w, "  containerd + ctr:     %6.2f s (daemon up in %.2f s), resident: %6d KiB (daemon %d KiB + %d shims %d KiB)\n",
			t.ContainerdS, t.ContainerdUpS, t.ContainerdTotal, t.ContainerdRSS, t.Shims, t.ShimsRSSKiB)
		fmt.Fprintf(w, "  moor/containerd:      time %.2f, RSS %.2f\n\n", t.MoorS/t.ContainerdS, float64(t.MoorRSSKiB)/float64(t.ContainerdTotal))
	}
	if m := r.Init; m != nil {
		fmt.Fprintf(w, "moor as a machine's init (qemu TCG, 256 MiB, kernel %s; one onboot task, two services)\n", m.Kernel)
		fmt.Fprintf(w, "  every service running at kernel uptime %d ms; moor's RSS as PID 1 then: %d KiB\n\n", m.BootReadyMS, m.PID1RSSKiB)
	}
	if b := r.Box; b != nil {
		fmt.Fprintf(w, "EVE in a box (qemu TCG, 256 MiB: moor as PID 1, the EVE tree, moor-taskmgr as pillar, %d user apps)\n", len(evebox.Apps))
		fmt.Fprintf(w, "  every EVE service running at uptime %d ms, the apps at %d ms; moor's RSS as PID 1 with the apps: %d KiB; processes beyond the apps' own: %.1f per app\n\n",
			b.ServicesReadyMS, b.AppsReadyMS, b.PID1RSSKiB, b.ExtraProcsPerApp)
	}
	line := r.jsonLine()
	for k, v := range line {
		if _, err := json.Marshal(v); err != nil {
			delete(line, k) // NaN: a phase --only left out
		}
	}
	b, _ := json.Marshal(line)
	fmt.Fprintln(w, string(b))
}

func (r *report) jsonLine() map[string]any {
	perRT := func(m mode, get func(*cliResult) sample) map[string]float64 {
		out := map[string]float64{}
		for _, n := range runtimeOrder {
			out[n] = round2(get(r.CLI[m][n]).median())
		}
		return out
	}
	runTrue := func(c *cliResult) sample { return c.RunTrue }
	life := func(c *cliResult) sample { return c.Lifecycle }
	ratio := func(m mode, get func(*cliResult) sample, other string) float64 {
		return round2(get(r.CLI[m]["moor"]).median() / get(r.CLI[m][other]).median())
	}
	threads, rss, extra := map[string]int{}, map[string]int{}, map[string]float64{}
	for n, h := range r.Inproc.Held {
		threads[n], rss[n], extra[n] = h.Threads, h.RSSKiB, round2(h.Extra)
	}
	profile := map[string]map[string]float64{}
	for m, steps := range r.Inproc.Profile {
		if len(steps) != len(profileSteps) {
			continue
		}
		profile[string(m)] = map[string]float64{}
		for i, st := range profileSteps {
			profile[string(m)][st.Key] = round2(steps[i].median())
		}
	}
	line := map[string]any{
		"inproc_profile_ms":           profile,
		"date":                        r.Date.Format("2006-01-02"),
		"machine":                     r.Machine,
		"mode":                        "cold (warm: *_warm_*)",
		"cgroups":                     map[bool]string{true: "v1 only (private mount namespace of a hybrid host)", false: "host"}[r.Hybrid],
		"rounds":                      r.Rounds,
		"run_true_ms":                 perRT(cold, runTrue),
		"lifecycle_ms":                perRT(cold, life),
		"run_true_warm_ms":            perRT(warm, runTrue),
		"lifecycle_warm_ms":           perRT(warm, life),
		"inproc_start_ms":             round2(r.Inproc.StartMS[cold].median()),
		"inproc_start_p95_ms":         round2(r.Inproc.StartMS[cold].quantile(0.95)),
		"inproc_start_warm_ms":        round2(r.Inproc.StartMS[warm].median()),
		"inproc_start_warm_p95_ms":    round2(r.Inproc.StartMS[warm].quantile(0.95)),
		"supervisor_threads":          threads,
		"supervisor_rss_kib":          rss,
		"extra_procs_per_task":        extra,
		"anchor_rss_kib":              r.Anchor.RSSKiB,
		"anchor_pss_kib":              r.Anchor.PssKiB,
		"anchor_anon_kib":             r.Anchor.AnonKiB,
		"start100_s":                  round2(r.Inproc.Start100S),
		"ratio_run_true_warm_vs_crun": ratio(warm, runTrue, nameCrun),
	}
	for _, n := range ratioTo {
		line["ratio_run_true_vs_"+n] = ratio(cold, runTrue, n)
		line["ratio_lifecycle_vs_"+n] = ratio(cold, life, n)
	}
	if c := r.Ctr.RunRm; len(c) > 0 {
		ctr := map[string]float64{}
		for _, n := range ctrRuntimes {
			ctr[n] = round2(c[n].median())
		}
		line["ctr_run_rm_ms"] = ctr
	}
	for _, t := range r.Trees {
		line[fmt.Sprintf("tree%d", t.N)] = map[string]any{"moor_s": round2(t.MoorS), "containerd_s": round2(t.ContainerdS),
			"moor_rss_kib": t.MoorRSSKiB, "containerd_rss_kib": t.ContainerdTotal}
	}
	if m := r.Init; m != nil {
		line["boot_ready_ms"] = m.BootReadyMS
		line["pid1_rss_kib"] = m.PID1RSSKiB
	}
	if b := r.Box; b != nil {
		line["eve_box"] = map[string]any{"services_ready_ms": b.ServicesReadyMS, "apps_ready_ms": b.AppsReadyMS,
			"pid1_rss_kib": b.PID1RSSKiB, "extra_procs_per_app": b.ExtraProcsPerApp}
	}
	return line
}
