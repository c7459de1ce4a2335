package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	copier "github.com/imgcopy/imgcopy/copy"
	syncer "github.com/imgcopy/imgcopy/sync"
)

// syncProgress renders a sync's events and its end.
type syncProgress interface {
	// event handles one event; it is called from several goroutines.
	event(ev syncer.Event)
	// finish is called once after the run, with its report.
	finish(rep *syncer.Report)
}

// newSyncProgress picks the renderer for --progress and --quiet.
func newSyncProgress(e *env, mode string, quiet bool) (syncProgress, error) {
	if quiet {
		return quietSync{}, nil
	}
	switch mode {
	case "auto":
		if e.isTerminal(e.stdout) {
			return newSyncBars(e.stdout), nil
		}
		return &plainSync{w: e.stdout}, nil
	case "bars":
		return newSyncBars(e.stdout), nil
	case "plain":
		return &plainSync{w: e.stdout}, nil
	case "json":
		return &jsonSync{enc: json.NewEncoder(e.stdout), blobs: &jsonOutput{enc: json.NewEncoder(e.stdout)}}, nil
	}
	return nil, usageErrorf("--progress %q: want auto, bars, plain or json", mode)
}

type quietSync struct{}

func (quietSync) event(syncer.Event)    {}
func (quietSync) finish(*syncer.Report) {}

// resultLine renders one plan item or run result: "ACTION  SOURCE → DESTINATION  detail".
func resultLine(r syncer.Result) string {
	s := fmt.Sprintf("%-10s ", r.Action)
	if r.Source != "" && r.Source != r.Destination {
		s += r.Source + " → "
	}
	s += r.Destination
	switch {
	case r.Error != "":
		s += ": " + r.Error + " [" + r.ErrorClass + "]"
	case r.Action == syncer.ActionCopied:
		s += fmt.Sprintf(" %s: %d blob(s) copied (%s), %d reused", shortDigest(r.Digest), r.BlobsCopied, humanBytes(r.BytesCopied), r.BlobsReused)
		if r.BytesResumed > 0 {
			s += ", resumed " + humanBytes(r.BytesResumed)
		}
		if r.RelatedCopied > 0 {
			s += fmt.Sprintf(", %d referrer(s) and digest tag(s) written", r.RelatedCopied)
		}
		s += " in " + (time.Duration(r.Seconds * float64(time.Second))).Round(time.Millisecond).String()
	case r.Digest != "":
		s += " " + shortDigest(r.Digest)
	}
	if r.Reason != "" && r.Error == "" {
		s += " (" + r.Reason + ")"
	}
	return s
}

// summaryLine is the last line of a run or a plan.
func summaryLine(rep *syncer.Report) string {
	if rep.DryRun {
		return "Plan: " + rep.Summary()
	}
	resumed := ""
	if rep.BytesResumed > 0 {
		resumed = " (" + humanBytes(rep.BytesResumed) + " of it resumed)"
	}
	return fmt.Sprintf("Synced to %s: %s; %s copied%s, %s reused, in %s", rep.Destination, rep.Summary(),
		humanBytes(rep.BytesCopied), resumed, humanBytes(rep.BytesReused), (time.Duration(rep.Seconds * float64(time.Second))).Round(time.Millisecond))
}

// printPlan prints a dry run's plan as text lines or as the JSON report.
func printPlan(e *env, _ *syncer.Plan, rep *syncer.Report, format string) error {
	if format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	for _, r := range rep.Images {
		printf(e.stdout, "%s\n", resultLine(r))
	}
	printf(e.stdout, "%s\n", summaryLine(rep))
	return nil
}

// plainSync prints a line per finished image, prefixed with the overall count.
type plainSync struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plainSync) event(ev syncer.Event) {
	if ev.Kind != syncer.EventImageDone {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	printf(p.w, "[%d/%d] %s\n", ev.Done, ev.Total, resultLine(*ev.Result))
}

func (p *plainSync) finish(rep *syncer.Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	printf(p.w, "%s\n", summaryLine(rep))
}

// jsonSyncEvent is a line of --progress json for the sync's own events but image-done
// (jsonImageDone); blob events use the copy's jsonEvent with the image added.
type jsonSyncEvent struct {
	Event       string `json:"event"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination,omitempty"`
	// Summary fields, on the final "sync-done" event.
	Counts      map[syncer.Action]int `json:"counts,omitempty"`
	BytesCopied *int64                `json:"bytesCopied,omitempty"`
	BytesReused *int64                `json:"bytesReused,omitempty"`
	// BytesResumed is on "sync-done" when copies resumed.
	BytesResumed int64   `json:"bytesResumed,omitempty"`
	Seconds      float64 `json:"seconds,omitempty"`
}

// jsonImageDone is the "image-done" line: the image's report entry with the progress
// counts. It has no field of its own that the entry has too: encoding/json would keep the
// outer one and drop the entry's source, destination, bytes and seconds.
type jsonImageDone struct {
	Event string `json:"event"`
	*syncer.Result
	Done  int `json:"done,omitempty"`
	Total int `json:"total,omitempty"`
}

// jsonSync writes one JSON object per image event and per blob event, then "sync-done".
type jsonSync struct {
	mu    sync.Mutex
	enc   *json.Encoder
	blobs *jsonOutput // encodes blob events (throttling blob-progress) into jsonEvents
}

type jsonBlobEvent struct {
	Source      string `json:"source"`
	Destination string `json:"image"`
	jsonEvent
}

func (j *jsonSync) event(ev syncer.Event) {
	switch ev.Kind {
	case syncer.EventBlob:
		je, ok := j.blobs.encode(*ev.Blob)
		if ok {
			j.write(jsonBlobEvent{Source: ev.Source, Destination: ev.Destination, jsonEvent: je})
		}
	case syncer.EventImageDone:
		j.write(jsonImageDone{Event: ev.Kind.String(), Result: ev.Result, Done: ev.Done, Total: ev.Total})
	default:
		j.write(jsonSyncEvent{Event: ev.Kind.String(), Source: ev.Source, Destination: ev.Destination})
	}
}

func (j *jsonSync) write(v any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(v)
}

func (j *jsonSync) finish(rep *syncer.Report) {
	j.write(jsonSyncEvent{Event: "sync-done", Destination: rep.Destination, Counts: rep.Counts,
		BytesCopied: &rep.BytesCopied, BytesReused: &rep.BytesReused, BytesResumed: rep.BytesResumed, Seconds: rep.Seconds})
}

// syncBars draws one overall bar (images done of total, bytes, rate) on a terminal and
// prints a line per finished image above it.
type syncBars struct {
	mu    sync.Mutex
	w     io.Writer
	p     *mpb.Progress
	bar   *mpb.Bar
	bytes atomic.Int64 // read by the bar's refresh too
	start time.Time
}

func newSyncBars(w io.Writer) *syncBars {
	return &syncBars{w: w, p: mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(100*time.Millisecond)), start: time.Now()}
}

func (b *syncBars) event(ev syncer.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil {
		b.bar = b.p.AddBar(int64(ev.Total),
			mpb.PrependDecorators(decor.Name("Syncing "), decor.CountersNoUnit("%d/%d images ")),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return b.rate() })))
	}
	switch ev.Kind {
	case syncer.EventBlob:
		if ev.Blob.Kind == copier.EventBlobDone {
			b.bytes.Add(ev.Blob.Offset)
		}
	case syncer.EventImageDone:
		_, _ = b.p.Write([]byte(resultLine(*ev.Result) + "\n"))
		b.bar.SetCurrent(int64(ev.Done))
	}
}

// rate renders the bytes copied so far and the average rate.
func (b *syncBars) rate() string {
	n := b.bytes.Load()
	secs := time.Since(b.start).Seconds()
	if secs <= 0 {
		secs = 1
	}
	return strings.TrimSpace(fmt.Sprintf("%s copied, %s/s", humanBytes(n), humanBytes(int64(float64(n)/secs))))
}

func (b *syncBars) finish(rep *syncer.Report) {
	b.mu.Lock()
	if b.bar != nil {
		b.bar.SetTotal(-1, true)
	}
	b.mu.Unlock()
	b.p.Wait()
	printf(b.w, "%s\n", summaryLine(rep))
}
