package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/types"
)

// progressOutput renders copy progress events and the final summary.
type progressOutput interface {
	// event handles one event; it is called from several goroutines.
	event(ev copier.ProgressEvent)
	// finish is called once after the copy, with its result or error.
	finish(dest types.ImageReference, res *copier.Result, err error, elapsed time.Duration)
}

// newProgress picks the renderer for --progress and --quiet.
func newProgress(e *env, mode string, quiet bool) (progressOutput, error) {
	if quiet {
		return quietOutput{}, nil
	}
	switch mode {
	case "auto":
		if e.isTerminal(e.stdout) {
			return newBarsOutput(e.stdout), nil
		}
		return &plainOutput{w: e.stdout}, nil
	case "bars":
		return newBarsOutput(e.stdout), nil
	case "plain":
		return &plainOutput{w: e.stdout}, nil
	case "json":
		return &jsonOutput{enc: json.NewEncoder(e.stdout)}, nil
	}
	return nil, usageErrorf("--progress %q: want auto, bars, plain or json", mode)
}

type quietOutput struct{}

func (quietOutput) event(copier.ProgressEvent) {}
func (quietOutput) finish(types.ImageReference, *copier.Result, error, time.Duration) {
}

// summary is the one-line end-of-copy report.
func summary(dest types.ImageReference, res *copier.Result, elapsed time.Duration) string {
	if res.AlreadyPresent && len(res.Related) == 0 {
		return fmt.Sprintf("Wrote %s to %s: the destination already had the image, nothing copied, in %s",
			res.ManifestDigest, types.ImageName(dest), elapsed.Round(time.Millisecond))
	}
	return fmt.Sprintf("Wrote %s to %s: %d blob(s) copied (%s), %d reused (%s)%s in %s",
		res.ManifestDigest, types.ImageName(dest), res.BlobsCopied, humanBytes(res.BytesCopied),
		res.BlobsReused, humanBytes(res.BytesReused), relatedSummary(res)+resumeSummary(res), elapsed.Round(time.Millisecond))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func shortDigest(d digest.Digest) string {
	if enc := d.Encoded(); len(enc) > 12 {
		return d.Algorithm().String() + ":" + enc[:12]
	}
	return d.String()
}

// plainOutput prints one line per blob decision, like skopeo without a terminal.
type plainOutput struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plainOutput) event(ev copier.ProgressEvent) {
	var line string
	switch ev.Kind {
	case copier.EventBlobStarted:
		line = fmt.Sprintf("Copying blob %s (%s)", ev.Digest, sizeText(ev.Size))
		if ev.Resumed > 0 {
			line = fmt.Sprintf("Copying blob %s (%s, resuming at %s)", ev.Digest, sizeText(ev.Size), humanBytes(ev.Resumed))
		}
	case copier.EventBlobResumeDiscarded:
		line = fmt.Sprintf("Copying blob %s again: data kept from an interrupted copy did not verify: %v", ev.Digest, ev.Err)
	case copier.EventBlobRetried:
		line = fmt.Sprintf("Copying blob %s again: the transfer broke off: %v", ev.Digest, ev.Err)
	case copier.EventBlobReused:
		line = fmt.Sprintf("Copying blob %s skipped: already exists", ev.Digest)
	case copier.EventBlobMounted:
		line = fmt.Sprintf("Copying blob %s skipped: mounted from %s", ev.Digest, ev.MountedFrom)
	case copier.EventBlobSkipped:
		line = fmt.Sprintf("Copying blob %s skipped: %s", ev.Digest, ev.Reason)
	case copier.EventBlobDone:
		line = fmt.Sprintf("Copied blob %s (%s read)", ev.Digest, humanBytes(ev.Offset))
	case copier.EventBlobFailed:
		line = fmt.Sprintf("Failed blob %s: %v", ev.Digest, ev.Err)
	case copier.EventManifestWritten:
		line = fmt.Sprintf("Writing manifest %s", ev.Digest)
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	printf(p.w, "%s\n", line)
}

func (p *plainOutput) finish(dest types.ImageReference, res *copier.Result, err error, elapsed time.Duration) {
	if err == nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		printf(p.w, "%s\n", summary(dest, res, elapsed))
	}
}

func sizeText(n int64) string {
	if n < 0 {
		return "size unknown"
	}
	return humanBytes(n)
}

// jsonEvent is one line of --progress json output.
type jsonEvent struct {
	Event       string        `json:"event"`
	Digest      digest.Digest `json:"digest,omitempty"`
	MediaType   string        `json:"mediaType,omitempty"`
	Size        *int64        `json:"size,omitempty"`
	Offset      *int64        `json:"offset,omitempty"`
	Resumed     int64         `json:"resumed,omitempty"`
	MountedFrom string        `json:"mountedFrom,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	Error       string        `json:"error,omitempty"`
	// Class is the class of the error on the final "failed" event (types.ErrorClass.String:
	// "not-found", "auth", "rate-limited", ...), the one the exit code stands for.
	Class string `json:"class,omitempty"`
	// Summary fields, on the final "done" event.
	Destination string `json:"destination,omitempty"`
	MIMEType    string `json:"mimeType,omitempty"`
	BlobsCopied *int   `json:"blobsCopied,omitempty"`
	BlobsReused *int   `json:"blobsReused,omitempty"`
	BytesCopied *int64 `json:"bytesCopied,omitempty"`
	BytesReused *int64 `json:"bytesReused,omitempty"`
	// BytesResumed and ResumesDiscarded: see copier.Result.
	BytesResumed     *int64 `json:"bytesResumed,omitempty"`
	ResumesDiscarded int    `json:"resumesDiscarded,omitempty"`
	// AlreadyPresent marks a warm re-copy: the destination had the image, no blob was checked.
	AlreadyPresent bool `json:"alreadyPresent,omitempty"`
	// Related are the referrers and digest tags copied with the image; LeftOut says what
	// could not be (--referrers, --digest-tags).
	Related []relatedEvent `json:"related,omitempty"`
	LeftOut []string       `json:"leftOut,omitempty"`
	Seconds float64        `json:"seconds,omitempty"`
}

// jsonProgressInterval is the least time between two blob-progress lines of one blob.
const jsonProgressInterval = 200 * time.Millisecond

// jsonOutput writes one JSON object per event (blob-progress at most every
// jsonProgressInterval per blob, and at the end of the blob) and a final "done" (or "failed")
// object.
type jsonOutput struct {
	mu       sync.Mutex
	enc      *json.Encoder
	lastSent map[digest.Digest]time.Time
}

func (j *jsonOutput) event(ev copier.ProgressEvent) {
	if je, ok := j.encode(ev); ok {
		j.write(je)
	}
}

// encode returns the line for ev; ok is false for a blob-progress event not due yet.
func (j *jsonOutput) encode(ev copier.ProgressEvent) (je jsonEvent, ok bool) {
	if ev.Kind == copier.EventBlobProgress && !j.progressDue(ev) {
		return jsonEvent{}, false
	}
	je = jsonEvent{Event: ev.Kind.String(), Digest: ev.Digest, MediaType: ev.MediaType, Resumed: ev.Resumed, MountedFrom: ev.MountedFrom, Reason: ev.Reason}
	if ev.Kind != copier.EventManifestWritten {
		size, offset := ev.Size, ev.Offset
		je.Size, je.Offset = &size, &offset
	}
	if ev.Err != nil {
		je.Error = ev.Err.Error()
	}
	return je, true
}

// progressDue reports whether a blob-progress event should be written now.
func (j *jsonOutput) progressDue(ev copier.ProgressEvent) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if ev.Size >= 0 && ev.Offset >= ev.Size {
		return true
	}
	now := time.Now()
	if now.Sub(j.lastSent[ev.Digest]) < jsonProgressInterval {
		return false
	}
	if j.lastSent == nil {
		j.lastSent = map[digest.Digest]time.Time{}
	}
	j.lastSent[ev.Digest] = now
	return true
}

func (j *jsonOutput) write(je jsonEvent) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(je)
}

func (j *jsonOutput) finish(dest types.ImageReference, res *copier.Result, err error, elapsed time.Duration) {
	if err != nil {
		j.write(jsonEvent{Event: "failed", Destination: types.ImageName(dest), Error: err.Error(),
			Class: types.Classify(err).String(), Seconds: elapsed.Seconds()})
		return
	}
	j.write(jsonEvent{
		Event: "done", Destination: types.ImageName(dest), Digest: res.ManifestDigest, MIMEType: res.MIMEType,
		BlobsCopied: &res.BlobsCopied, BlobsReused: &res.BlobsReused,
		BytesCopied: &res.BytesCopied, BytesReused: &res.BytesReused, AlreadyPresent: res.AlreadyPresent,
		BytesResumed: &res.BytesResumed, ResumesDiscarded: res.ResumesDiscarded,
		Related: relatedJSON(res), LeftOut: res.LeftOut, Seconds: elapsed.Seconds(),
	})
}

// barsOutput draws one mpb bar per blob on a terminal.
type barsOutput struct {
	mu   sync.Mutex
	w    io.Writer
	p    *mpb.Progress
	bars map[digest.Digest]*mpb.Bar
	done map[*mpb.Bar]bool
}

func newBarsOutput(w io.Writer) *barsOutput {
	return &barsOutput{
		w:    w,
		p:    mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(100*time.Millisecond)),
		bars: map[digest.Digest]*mpb.Bar{},
		done: map[*mpb.Bar]bool{},
	}
}

func (b *barsOutput) event(ev copier.ProgressEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev.Kind {
	case copier.EventBlobStarted:
		b.bars[ev.Digest] = b.p.AddBar(max(ev.Size, 0),
			mpb.PrependDecorators(decor.Name("Copying blob "+shortDigest(ev.Digest)+" ")),
			mpb.AppendDecorators(
				decor.CountersKibiByte("% .1f / % .1f "),
				decor.OnAbort(decor.OnComplete(decor.AverageSpeed(decor.SizeB1024(0), "% .1f"), "done"), "failed"),
			))
	case copier.EventBlobProgress:
		if bar := b.bars[ev.Digest]; bar != nil && !b.done[bar] {
			if ev.Size < 0 {
				bar.SetTotal(ev.Offset+1, false)
			}
			bar.SetCurrent(ev.Offset)
		}
	case copier.EventBlobReused, copier.EventBlobMounted, copier.EventBlobSkipped:
		msg := "skipped: already exists"
		switch ev.Kind {
		case copier.EventBlobMounted:
			msg = "skipped: mounted from " + ev.MountedFrom
		case copier.EventBlobSkipped:
			msg = "skipped: " + ev.Reason
		}
		bar := b.p.AddBar(0, mpb.BarFillerClearOnComplete(),
			mpb.PrependDecorators(decor.Name("Copying blob "+shortDigest(ev.Digest)+" ")),
			mpb.AppendDecorators(decor.Name(msg)))
		bar.SetTotal(-1, true)
	case copier.EventBlobDone:
		if bar := b.doneBar(ev); bar != nil {
			b.done[bar] = true
			bar.SetTotal(-1, true)
		}
	case copier.EventBlobFailed, copier.EventBlobResumeDiscarded, copier.EventBlobRetried:
		if bar := b.bars[ev.Digest]; bar != nil {
			b.done[bar] = true
			bar.Abort(false)
		}
	}
}

// doneBar finds the bar of a finished blob. The event names the blob as stored, which
// differs from the source digest the bar was started with when the layer was
// (re)compressed; then the unfinished bar that read exactly ev.Offset bytes is it.
func (b *barsOutput) doneBar(ev copier.ProgressEvent) *mpb.Bar {
	if bar := b.bars[ev.Digest]; bar != nil && !b.done[bar] {
		return bar
	}
	for _, bar := range b.bars {
		if !b.done[bar] && bar.Current() == ev.Offset {
			return bar
		}
	}
	return nil
}

func (b *barsOutput) finish(dest types.ImageReference, res *copier.Result, err error, elapsed time.Duration) {
	b.mu.Lock()
	for _, bar := range b.bars {
		if !b.done[bar] {
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
	if err == nil {
		printf(b.w, "%s\n", summary(dest, res, elapsed))
	}
}
