package main

import (
	"encoding/json"
	"fmt"
	"io"
)

var runtimeOrder = []string{"moor", "runc", "crun"}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nmoorbench %s — %s\n", r.Date.Format("2006-01-02 15:04 UTC"), r.Machine)
	for _, n := range runtimeOrder {
		fmt.Fprintf(w, "  %-5s %s\n", n, r.Versions[n])
	}
	if r.Hybrid {
		fmt.Fprintln(w, "  cgroups: hybrid host; every runtime ran in a private mount namespace whose cgroup root holds only the v1 hierarchies (crun 1.8 refuses hybrid)")
	} else {
		fmt.Fprintln(w, "  cgroups: as the host has them")
	}
	fmt.Fprintln(w, "  state roots on a tmpfs (each runtime's default root is under /run, a tmpfs); bundle and rootfs in $TMPDIR")
	fmt.Fprintf(w, "  same busybox bundle (read-only root, pid/net/ipc/uts/mount namespaces, 64 MiB, 512 shares, cgroup under /moor-bench) for all;\n")
	fmt.Fprintf(w, "  %d rounds after %d warm-up, runtimes interleaved in rotating order; times in ms: median (min–max)\n\n", r.Rounds, r.Warm)

	fmt.Fprintf(w, "%-34s %-20s %-20s %-20s %9s %9s\n", "CLI", "moor", "runc", "crun", "moor/crun", "moor/runc")
	row := func(name string, get func(*cliResult) sample) {
		fmt.Fprintf(w, "%-34s", name)
		for _, n := range runtimeOrder {
			s := get(r.CLI[n])
			fmt.Fprintf(w, " %-20s", fmt.Sprintf("%.1f (%.1f–%.1f)", s.median(), s.min(), s.max()))
		}
		m := get(r.CLI["moor"]).median()
		fmt.Fprintf(w, " %9.2f %9.2f\n", m/get(r.CLI["crun"]).median(), m/get(r.CLI["runc"]).median())
	}
	row("run /bin/true", func(c *cliResult) sample { return c.RunTrue })
	row("create+start+kill+delete (sleep)", func(c *cliResult) sample { return c.Lifecycle })
	for _, st := range lifecycleSteps {
		row("  "+st, func(c *cliResult) sample { return c.Steps[st] })
	}

	in := r.Inproc
	fmt.Fprintf(w, "\nin-process (supervisor library, one reaper)\n")
	fmt.Fprintf(w, "  Create+Start until the process runs   median %.1f ms, p95 %.1f ms (%.1f–%.1f), %d starts\n",
		in.StartMS.median(), in.StartMS.quantile(0.95), in.StartMS.min(), in.StartMS.max(), len(in.StartMS))
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

	b, _ := json.Marshal(r.jsonLine())
	fmt.Fprintln(w, string(b))
}

func (r *report) jsonLine() map[string]any {
	perRT := func(get func(*cliResult) sample) map[string]float64 {
		m := map[string]float64{}
		for _, n := range runtimeOrder {
			m[n] = round2(get(r.CLI[n]).median())
		}
		return m
	}
	threads, rss, extra := map[string]int{}, map[string]int{}, map[string]float64{}
	for n, h := range r.Inproc.Held {
		threads[n], rss[n], extra[n] = h.Threads, h.RSSKiB, round2(h.Extra)
	}
	return map[string]any{
		"date":                    r.Date.Format("2006-01-02"),
		"machine":                 r.Machine,
		"cgroups":                 map[bool]string{true: "v1 only (private mount namespace of a hybrid host)", false: "host"}[r.Hybrid],
		"rounds":                  r.Rounds,
		"run_true_ms":             perRT(func(c *cliResult) sample { return c.RunTrue }),
		"lifecycle_ms":            perRT(func(c *cliResult) sample { return c.Lifecycle }),
		"inproc_start_ms":         round2(r.Inproc.StartMS.median()),
		"inproc_start_p95_ms":     round2(r.Inproc.StartMS.quantile(0.95)),
		"supervisor_threads":      threads,
		"supervisor_rss_kib":      rss,
		"extra_procs_per_task":    extra,
		"anchor_rss_kib":          r.Anchor.RSSKiB,
		"anchor_pss_kib":          r.Anchor.PssKiB,
		"anchor_anon_kib":         r.Anchor.AnonKiB,
		"start100_s":              round2(r.Inproc.Start100S),
		"ratio_run_true_vs_crun":  round2(r.CLI["moor"].RunTrue.median() / r.CLI["crun"].RunTrue.median()),
		"ratio_run_true_vs_runc":  round2(r.CLI["moor"].RunTrue.median() / r.CLI["runc"].RunTrue.median()),
		"ratio_lifecycle_vs_crun": round2(r.CLI["moor"].Lifecycle.median() / r.CLI["crun"].Lifecycle.median()),
	}
}
