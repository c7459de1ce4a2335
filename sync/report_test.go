package sync

import (
	"testing"

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
		r.copied(&Item{}, &cr, &res)
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
