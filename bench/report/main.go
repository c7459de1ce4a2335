// Command report turns the raw measurements of bench/run.sh into markdown tables.
//
// Usage: report RESULTS.tsv
//
// Each input line is: scenario, workload, tool, run, wall seconds, peak RSS KiB, exit status,
// and optionally the tool's CPU seconds (user + system) and the CPU seconds both registries
// used during the run (tab separated; lines starting with # are ignored). The output has one
// table per scenario (median wall time over the successful runs, the highest peak RSS, the
// median CPU of the tool and of the registries, and imgcopy's time as a ratio of each other
// tool's), then a summary of the ratios against the targets of issue 18.
//
// Some rows are there for explanation and count for no target: imgcopy-nofsync (imgcopy with
// --fsync=false: without the durability crane does not have) and floor-sync (the floor with
// an fsync per blob), on the scenarios that write to the local disk; imgcopy-noresume
// (imgcopy with --no-resume: without the partial download kept of every blob it downloads);
// and, for pushes from a layout, floor-sendfile (the floor sending files with sendfile and
// hashing them with a second reader, as imgcopy does) and floor-nohash (sendfile without
// hashing, as crane does).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Order of scenarios, workloads and tools in the tables.
var (
	scenarioOrder = []string{"reg-reg", "reg-oci", "oci-reg", "reg-archive", "archive-reg", "warm"}
	scenarioNames = map[string]string{
		"reg-reg":     "registry → registry (A → B)",
		"reg-oci":     "registry → oci layout",
		"oci-reg":     "oci layout → registry",
		"reg-archive": "registry → docker-archive",
		"archive-reg": "docker-archive → registry",
		"warm":        "warm re-copy (registry → registry, already there)",
	}
	workloadOrder = []string{"big", "many", "tree", "multi"}
	toolOrder     = []string{"imgcopy", "imgcopy-nofsync", "imgcopy-noresume", "skopeo", "crane", "floor", "floor-sync", "floor-sendfile", "floor-nohash"}
	peers         = []string{"skopeo", "crane"}
)

// Targets from issue 18 (and issue 8 before it).
const (
	rssTargetMiB     = 64
	floorTarget      = 1.25 // big layers: reg-reg, oci-reg, reg-oci
	peerTarget       = 1.05 // imgcopy / the fastest peer, every cell
	pushPeerTarget   = 1.00 // the same on reg-reg and oci-reg
	warmCraneTarget  = 1.5  // warm re-copy of "many"
	kibPerMiB        = 1024
	missing          = "—"
	floorFootnoteFor = "archive"
)

type key struct{ scenario, workload, tool string }

type cell struct {
	times  []float64
	rssKiB int64
	failed int
	// cpu and regCPU: the tool's CPU seconds and the registries', per successful run, when
	// the results have them.
	cpu, regCPU []float64
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: report RESULTS.tsv")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	defer f.Close()
	cells, err := read(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	write(os.Stdout, cells)
}

func read(r io.Reader) (map[key]*cell, error) {
	cells := map[key]*cell{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 7 && len(f) != 9 {
			return nil, fmt.Errorf("line %d: want 7 or 9 tab-separated fields, have %d", line, len(f))
		}
		k := key{f[0], f[1], f[2]}
		c := cells[k]
		if c == nil {
			c = &cell{}
			cells[k] = c
		}
		secs, err1 := strconv.ParseFloat(f[4], 64)
		rss, err2 := strconv.ParseInt(f[5], 10, 64)
		if f[6] != "0" || err1 != nil || err2 != nil {
			c.failed++
			continue
		}
		c.times = append(c.times, secs)
		c.rssKiB = max(c.rssKiB, rss)
		if len(f) == 9 {
			cpu, err1 := strconv.ParseFloat(f[7], 64)
			reg, err2 := strconv.ParseFloat(f[8], 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("line %d: CPU seconds %q, %q are not numbers", line, f[7], f[8])
			}
			c.cpu = append(c.cpu, cpu)
			c.regCPU = append(c.regCPU, reg)
		}
	}
	return cells, sc.Err()
}

func (c *cell) median() (float64, bool) {
	if c == nil {
		return 0, false
	}
	return median(c.times)
}

func median(times []float64) (float64, bool) {
	if len(times) == 0 {
		return 0, false
	}
	t := slices.Clone(times)
	slices.Sort(t)
	n := len(t)
	if n%2 == 1 {
		return t[n/2], true
	}
	return (t[n/2-1] + t[n/2]) / 2, true
}

func ratio(cells map[key]*cell, scenario, workload, tool string) (float64, bool) {
	a, ok1 := cells[key{scenario, workload, "imgcopy"}].median()
	b, ok2 := cells[key{scenario, workload, tool}].median()
	if !ok1 || !ok2 || b == 0 {
		return 0, false
	}
	return a / b, true
}

// fmtSecs shows a time to the hundredth of a second, and below a second to the millisecond
// (bench/run.sh measures to the millisecond; a warm copy takes 30 ms).
func fmtSecs(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.3f", s)
	}
	return fmt.Sprintf("%.2f", s)
}

func fmtRatio(r float64, ok bool) string {
	if !ok {
		return missing
	}
	return fmt.Sprintf("%.2f", r)
}

func write(w io.Writer, cells map[key]*cell) {
	present := func(s, wl string) bool {
		for _, t := range toolOrder {
			if cells[key{s, wl, t}] != nil {
				return true
			}
		}
		return false
	}
	for _, s := range scenarioOrder {
		var rows []string
		for _, wl := range workloadOrder {
			if !present(s, wl) {
				continue
			}
			for _, tool := range toolOrder {
				c := cells[key{s, wl, tool}]
				if c == nil {
					continue
				}
				med, ok := c.median()
				medS, rssS, cpuS := missing, missing, missing
				if ok {
					medS = fmtSecs(med)
					rssS = fmt.Sprintf("%.0f", float64(c.rssKiB)/kibPerMiB)
				}
				if cpu, ok := median(c.cpu); ok {
					reg, _ := median(c.regCPU)
					cpuS = fmt.Sprintf("%.2f + %.2f", cpu, reg)
				}
				runs := fmt.Sprintf("%d", len(c.times))
				if c.failed > 0 {
					runs += fmt.Sprintf(" (+%d failed)", c.failed)
				}
				r := missing
				if tool != "imgcopy" {
					r = fmtRatio(ratio(cells, s, wl, tool))
				}
				rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |", wl, tool, medS, rssS, cpuS, r, runs))
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "### %s\n\n", scenarioNames[s])
		fmt.Fprintln(w, "| workload | tool | median s | peak RSS MiB | CPU s: tool + registries | imgcopy/tool | runs |")
		fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | --- |")
		for _, r := range rows {
			fmt.Fprintln(w, r)
		}
		if strings.Contains(s, floorFootnoteFor) {
			fmt.Fprintln(w, "\nfloor here moves the registry's compressed blobs (registry → disk, or an OCI layout → registry); it does no (de)compression, which a docker-archive needs.")
		}
		fmt.Fprintln(w)
	}
	writeSummary(w, cells)
}

func writeSummary(w io.Writer, cells map[key]*cell) {
	fmt.Fprintln(w, "### Summary against the targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | workload | imgcopy/skopeo | imgcopy/crane | imgcopy/floor | imgcopy RSS MiB | --fsync=false/fastest peer | --no-resume/fastest peer | targets |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, s := range scenarioOrder {
		for _, wl := range workloadOrder {
			c := cells[key{s, wl, "imgcopy"}]
			others := false
			for _, t := range toolOrder[1:] {
				others = others || cells[key{s, wl, t}] != nil
			}
			nofsync := fmtRatio(fastestRatio(cells, s, wl, "imgcopy-nofsync"))
			noresume := fmtRatio(fastestRatio(cells, s, wl, "imgcopy-noresume"))
			if c == nil && !others {
				continue
			}
			rs, okS := ratio(cells, s, wl, "skopeo")
			rc, okC := ratio(cells, s, wl, "crane")
			rf, okF := ratio(cells, s, wl, "floor")
			rss := missing
			var verdicts []string
			if _, ok := c.median(); !ok {
				verdicts = append(verdicts, "no imgcopy numbers")
			} else {
				rss = fmt.Sprintf("%.0f", float64(c.rssKiB)/kibPerMiB)
				if float64(c.rssKiB)/kibPerMiB > rssTargetMiB {
					verdicts = append(verdicts, fmt.Sprintf("RSS > %d MiB", rssTargetMiB))
				}
				target := peerTarget
				if s == "reg-reg" || s == "oci-reg" {
					target = pushPeerTarget
				}
				if fastest, ok := fastestRatio(cells, s, wl, "imgcopy"); ok && fastest > target {
					verdicts = append(verdicts, fmt.Sprintf("%.2f× the fastest peer > %.2f×", fastest, target))
				}
				if wl == "big" && (s == "reg-reg" || s == "oci-reg" || s == "reg-oci") && okF && rf > floorTarget {
					verdicts = append(verdicts, fmt.Sprintf("%.2f× floor > %.2f×", rf, floorTarget))
				}
				if s == "warm" && wl == "many" && okC && rc > warmCraneTarget {
					verdicts = append(verdicts, fmt.Sprintf("%.2f× crane > %.1f×", rc, warmCraneTarget))
				}
			}
			verdict := "met"
			if len(verdicts) > 0 {
				verdict = strings.Join(verdicts, "; ")
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, wl, fmtRatio(rs, okS), fmtRatio(rc, okC), fmtRatio(rf, okF), rss, nofsync, noresume, verdict)
		}
	}
}

// fastestRatio is tool's median over the fastest peer's (skopeo, crane) in one cell.
func fastestRatio(cells map[key]*cell, scenario, workload, tool string) (float64, bool) {
	a, ok := cells[key{scenario, workload, tool}].median()
	if !ok {
		return 0, false
	}
	best, found := 0.0, false
	for _, p := range peers {
		if m, ok := cells[key{scenario, workload, p}].median(); ok && m > 0 && (!found || m < best) {
			best, found = m, true
		}
	}
	if !found {
		return 0, false
	}
	return a / best, true
}
