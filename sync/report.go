package sync

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

// Report is what a run did (or, for a dry run, what a plan would do), as written by
// --report: one entry per image and per pruned tag, and totals.
type Report struct {
	Destination string    `json:"destination"`
	Shard       string    `json:"shard,omitempty"`
	DryRun      bool      `json:"dryRun"`
	Started     time.Time `json:"started"`
	Seconds     float64   `json:"seconds"`
	// Counts maps each action to its number of entries.
	Counts      map[Action]int `json:"counts"`
	BytesCopied int64          `json:"bytesCopied"`
	BytesReused int64          `json:"bytesReused"`
	// BytesResumed counts the bytes copies took from data an interrupted run kept instead of
	// transferring them again (part of BytesCopied).
	BytesResumed int64    `json:"bytesResumed,omitempty"`
	Images       []Result `json:"images"`
}

// Result is one entry of a Report.
type Result struct {
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	// Digest is the manifest digest the destination has now (written, or already there).
	Digest       digest.Digest `json:"digest,omitempty"`
	SourceDigest digest.Digest `json:"sourceDigest,omitempty"`
	Action       Action        `json:"action"`
	Reason       string        `json:"reason,omitempty"`
	BlobsCopied  int           `json:"blobsCopied"`
	BlobsReused  int           `json:"blobsReused"`
	BytesCopied  int64         `json:"bytesCopied"`
	BytesReused  int64         `json:"bytesReused"`
	// BytesResumed is copier.Result.BytesResumed: bytes of BytesCopied taken from data an
	// interrupted run kept.
	BytesResumed int64 `json:"bytesResumed,omitempty"`
	// RelatedCopied counts the referrers and digest tags written with the image
	// (copy.Options.Referrers, DigestTags); those the destination had already are not counted.
	RelatedCopied int `json:"relatedCopied,omitempty"`
	// LeftOut says what related manifests the copy could not write and why (a destination
	// that holds none, a conversion that changed the subject's digest): copier.Result.LeftOut.
	LeftOut []string `json:"leftOut,omitempty"`
	Seconds float64  `json:"seconds"`
	Error   string   `json:"error,omitempty"`
	// ErrorClass is the class of Error (types.ErrorClass): "not-found", "auth", …
	ErrorClass string `json:"errorClass,omitempty"`

	err error
}

// Err returns the failure of a failed entry, or nil.
func (r Result) Err() error { return r.err }

// planResult is the report entry of a plan item.
func planResult(it *Item) Result {
	r := Result{Source: it.Source, Destination: it.Destination, SourceDigest: it.SourceDigest, Action: it.Action, Reason: it.Reason}
	if it.Action == ActionUpToDate || it.Action == ActionPrune {
		r.Digest = it.DestinationDigest
	}
	if it.Err != nil {
		r.setErr(it.Err)
	}
	return r
}

func (r *Result) setErr(err error) {
	r.err, r.Error, r.ErrorClass = err, err.Error(), types.Classify(err).String()
}

// Report returns the plan as a dry-run report.
func (p *Plan) Report() *Report {
	rep := &Report{Destination: p.Destination, Shard: p.Shard.String(), DryRun: true, Started: time.Now()}
	for _, it := range p.Items {
		rep.Images = append(rep.Images, planResult(it))
	}
	rep.count()
	return rep
}

func (rep *Report) count() {
	rep.Counts = map[Action]int{}
	rep.BytesCopied, rep.BytesReused, rep.BytesResumed = 0, 0, 0
	for _, r := range rep.Images {
		rep.Counts[r.Action]++
		rep.BytesCopied += r.BytesCopied
		rep.BytesReused += r.BytesReused
		rep.BytesResumed += r.BytesResumed
	}
}

// Failures returns the entries that failed (in a dry run: could not be planned).
func (rep *Report) Failures() []Result {
	var out []Result
	for _, r := range rep.Images {
		if r.Action == ActionFailed || r.Action == ActionFail {
			out = append(out, r)
		}
	}
	return out
}

// Err returns nil when nothing failed, else a *FailedError listing the failures.
func (rep *Report) Err() error {
	if f := rep.Failures(); len(f) > 0 {
		return &FailedError{Failures: f}
	}
	return nil
}

// FailedError says that some images of a sync failed. Its class (types.ClassedError) is
// the failures' class when they all share one, interrupted when the sync was interrupted,
// else "other".
type FailedError struct {
	Failures []Result
}

// maxFailureLines is how many failures FailedError's message lists: a mirror of thousands
// of tags whose destination refuses them all would otherwise print thousands of lines of one
// error. The report (Report.Images) has them all.
const maxFailureLines = 20

// Error implements error.
func (e *FailedError) Error() string {
	var b strings.Builder
	b.WriteString(plural(len(e.Failures), "image") + " failed:")
	for i, r := range e.Failures {
		if i == maxFailureLines {
			b.WriteString(fmt.Sprintf("\n  … and %d more (the report, --report FILE, lists every one)", len(e.Failures)-i))
			break
		}
		b.WriteString("\n  " + r.failureLine())
	}
	return b.String()
}

// failureLine renders a failure for the summary: "SOURCE → DEST [class]: error".
func (r Result) failureLine() string {
	s := r.Destination
	if r.Source != "" && r.Source != r.Destination {
		s = r.Source + " → " + r.Destination
	}
	return s + " [" + r.ErrorClass + "]: " + r.Error
}

// ErrorClass implements types.ClassedError.
func (e *FailedError) ErrorClass() types.ErrorClass {
	classes := map[types.ErrorClass]bool{}
	for _, r := range e.Failures {
		c := types.Classify(r.err)
		if c == types.ClassInterrupted {
			return c
		}
		classes[c] = true
	}
	if len(classes) == 1 {
		for c := range classes {
			return c
		}
	}
	return types.ClassOther
}

// Unwrap returns the failures' errors, so that errors.Is finds a cause in any of them.
func (e *FailedError) Unwrap() []error {
	var errs []error
	for _, r := range e.Failures {
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return errs
}

// Summary returns the counts as one line, e.g. "3 copied, 27 up-to-date, 1 failed".
func (rep *Report) Summary() string {
	labels := []struct {
		a     Action
		label string
	}{
		{ActionCopy, "to copy"}, {ActionCopied, "copied"}, {ActionUpToDate, "up-to-date"},
		{ActionSkip, "skipped"}, {ActionSkipped, "skipped"}, {ActionPrune, "to prune"}, {ActionPruned, "pruned"},
		{ActionFail, "failing"}, {ActionFailed, "failed"},
	}
	var parts []string
	for _, l := range labels {
		if n := rep.Counts[l.a]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+l.label)
		}
	}
	if len(parts) == 0 {
		return "nothing selected"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
