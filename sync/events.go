package sync

import (
	copier "github.com/imgcopy/imgcopy/copy"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventImageStarted: the copy of an image started.
	EventImageStarted EventKind = iota
	// EventImageDone: an image is finished (Result says how: copied, up to date, skipped,
	// failed, pruned).
	EventImageDone
	// EventBlob: a blob event of an image's copy (Blob).
	EventBlob
)

// String returns the kind's name as used in JSON output: "image-started", "image-done",
// "blob".
func (k EventKind) String() string {
	switch k {
	case EventImageStarted:
		return "image-started"
	case EventImageDone:
		return "image-done"
	case EventBlob:
		return "blob"
	}
	return "unknown"
}

// Event is one step of a run, delivered to Options.Progress.
type Event struct {
	Kind        EventKind
	Source      string
	Destination string
	// Result is set for EventImageDone.
	Result *Result
	// Blob is set for EventBlob.
	Blob *copier.ProgressEvent
	// Done and Total count the entries finished so far and in all; BytesCopied the bytes
	// copied so far, over all images.
	Done, Total int
	BytesCopied int64
}
