package sync

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
)

// TestReportCountsResumedBytes: what copies took from data an interrupted run kept is in
// each image's entry and in the report's totals.
func TestReportCountsResumedBytes(t *testing.T) {
	t.Parallel()
	r := &runner{p: &Plan{}}
	rep := &Report{}
	for _, cr := range []copier.Result{
		{ManifestDigest: "sha256:a", BytesCopied: 100, BytesResumed: 60},
		{ManifestDigest: "sha256:b", BytesCopied: 50},
	} {
		var res Result
		r.copied(&Item{}, &cr, &res, 0)
		if res.BytesResumed != cr.BytesResumed {
			t.Errorf("entry of %s: BytesResumed %d, want %d", cr.ManifestDigest, res.BytesResumed, cr.BytesResumed)
		}
		rep.Images = append(rep.Images, res)
	}
	rep.count()
	if rep.BytesCopied != 150 || rep.BytesResumed != 60 {
		t.Errorf("totals: %d copied, %d resumed; want 150 and 60", rep.BytesCopied, rep.BytesResumed)
	}
}

// TestFailedErrorListsAtMostSomeFailures: a sync where every one of many images failed says
// how many, lists the first maxFailureLines and points to the report for the rest.
func TestFailedErrorListsAtMostSomeFailures(t *testing.T) {
	t.Parallel()
	rep := &Report{}
	for i := range 300 {
		var res Result
		res.Destination = fmt.Sprintf("oci:/tmp/x:img%d", i)
		res.Action = ActionFailed
		res.setErr(errors.New("refused"))
		rep.Images = append(rep.Images, res)
	}
	msg := rep.Err().Error()
	lines := strings.Split(msg, "\n")
	if lines[0] != "300 images failed:" || len(lines) != maxFailureLines+2 {
		t.Fatalf("message of %d lines, starting %q; want a header, %d failures and a last line", len(lines), lines[0], maxFailureLines)
	}
	if !strings.Contains(lines[1], "oci:/tmp/x:img0 [") || !strings.Contains(lines[maxFailureLines], "img19 [") {
		t.Errorf("failures listed: %q … %q; want img0 to img19", lines[1], lines[maxFailureLines])
	}
	if want := "  … and 280 more (the report, --report FILE, lists every one)"; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}
}
