package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	const tsv = "# scenario\tworkload\ttool\trun\tseconds\tpeak_rss_kib\tstatus\n" +
		"reg-reg\tbig\timgcopy\t1\t10.0\t20480\t0\n" +
		"reg-reg\tbig\timgcopy\t2\t12.0\t30720\t0\n" +
		"reg-reg\tbig\timgcopy\t3\t99.0\t10240\t1\n" + // failed: not in the median
		"reg-reg\tbig\tskopeo\t1\t20.0\t40960\t0\n" +
		"reg-reg\tbig\tcrane\t1\t8.0\t10240\t0\t0.50\t6.25\n" + // with CPU seconds
		"reg-reg\tbig\tfloor\t1\t5.0\t8192\t0\n" +
		"reg-oci\tmany\timgcopy\t1\t1.04\t8192\t0\n" +
		"reg-oci\tmany\timgcopy-nofsync\t1\t0.9\t8192\t0\n" +
		"reg-oci\tmany\tcrane\t1\t1.0\t8192\t0\n" +
		"reg-oci\tmany\tskopeo\t1\t2.0\t8192\t0\n" +
		"oci-reg\tmany\timgcopy\t1\t1.04\t8192\t0\n" +
		"oci-reg\tmany\tcrane\t1\t1.0\t8192\t0\n" +
		"warm\tmany\timgcopy\t1\t-\t-\tsetup\n" +
		"warm\tmany\tcrane\t1\t1.0\t10240\t0\n"
	cells, err := read(strings.NewReader(tsv))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		k      key
		median float64
		ok     bool
		failed int
		rss    int64
	}{
		{k: key{"reg-reg", "big", "imgcopy"}, median: 11, ok: true, failed: 1, rss: 30720},
		{k: key{"reg-reg", "big", "skopeo"}, median: 20, ok: true, rss: 40960},
		{k: key{"warm", "many", "imgcopy"}, ok: false, failed: 1},
	}
	for _, tt := range tests {
		c := cells[tt.k]
		m, ok := c.median()
		if m != tt.median || ok != tt.ok || c.failed != tt.failed || c.rssKiB != tt.rss {
			t.Errorf("%v: median %v %v, failed %d, rss %d; want %v %v, %d, %d", tt.k, m, ok, c.failed, c.rssKiB, tt.median, tt.ok, tt.failed, tt.rss)
		}
	}
	var out strings.Builder
	write(&out, cells)
	for _, want := range []string{
		"| big | skopeo | 20.00 | 40 | — | 0.55 | 1 |",         // 11/20
		"| big | crane | 8.00 | 10 | 0.50 + 6.25 | 1.38 | 1 |", // 11/8
		"| big | imgcopy | 11.00 | 30 | — | — | 2 (+1 failed) |",
		"| reg-reg | big | 0.55 | 1.38 | 2.20 | 30 | — | — | 1.38× the fastest peer > 1.00×; 2.20× floor > 1.25× |",
		"| reg-oci | many | 0.52 | 1.04 | — | 8 | 0.90 | — | met |", // within 1.05 of the fastest peer
		"| oci-reg | many | — | 1.04 | — | 8 | — | — | 1.04× the fastest peer > 1.00× |",
		"| many | imgcopy-nofsync | 0.900 | 8 | — | 1.16 | 1 |", // below a second: to the millisecond
		"| warm | many | — | — | — | — | — | — | no imgcopy numbers |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReadRejectsShortLines(t *testing.T) {
	if _, err := read(strings.NewReader("reg-reg\tbig\timgcopy\n")); err == nil || !strings.Contains(err.Error(), "want 7 or 9") {
		t.Errorf("a 3-field line: %v", err)
	}
	if _, err := read(strings.NewReader("reg-reg\tbig\timgcopy\t1\t1.0\t1024\t0\tx\t1.0\n")); err == nil || !strings.Contains(err.Error(), "not numbers") {
		t.Errorf("a line with a bad CPU field: %v", err)
	}
}
