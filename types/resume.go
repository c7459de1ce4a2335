package types

import (
	"io"
	"time"

	"github.com/pkg/errors"
)

// Resuming interrupted copies (issue 17). Transports keep what an interrupted transfer leaves
// behind (a partial download, an upload session, blobs staged in a local destination) so that
// a later run, in another process, continues it. Kept data is never trusted: every byte still
// streams through the copy engine's verifier, and data that fails verification is discarded
// and the blob transferred again from the start.

const (
	// DefaultResumeMaxAge is how long kept partial downloads and upload records live when
	// ResumeOptions.MaxAge is 0.
	DefaultResumeMaxAge = 7 * 24 * time.Hour
	// DefaultResumeMaxSize bounds the total size of kept partial downloads when
	// ResumeOptions.MaxSize is 0.
	DefaultResumeMaxSize int64 = 10 << 30
)

// ResumeOptions turn resuming on for a SystemContext (a nil *ResumeOptions turns it off).
type ResumeOptions struct {
	// Dir holds partial downloads (named by digest) and records of upload sessions. "" keeps
	// none of them, so registry transfers start over; local destinations still reuse blobs a
	// killed run staged, since those live in the destination.
	Dir string
	// MaxAge prunes files in Dir not written for longer; 0 means DefaultResumeMaxAge.
	MaxAge time.Duration
	// MaxSize bounds the total size of partial downloads in Dir, the oldest pruned first; 0
	// means DefaultResumeMaxSize. A blob larger than the bound is not kept.
	MaxSize int64
}

// ResumedReader is implemented by a stream returned by ImageSource.GetBlob when its first
// bytes come from data an earlier, interrupted run kept (a partial download) rather than from
// the source. The stream still delivers the whole blob from its first byte, so the copy engine
// verifies all of it; when that verification fails, the engine fetches the blob once more with
// GetBlobOptions.NoResume.
type ResumedReader interface {
	// ResumedBytes returns how many bytes at the start of the stream come from kept data.
	ResumedBytes() int64
}

// ErrResumeFailed is returned (wrapped) by a destination whose continuation of an earlier
// run's transfer (an upload session) failed after the stream was read, in a way that a fresh
// transfer would not (the registry refused the data it kept). The copy engine then copies the
// blob once more with PutBlobOptions.NoResume, as it does when a resumed stream fails
// verification (ErrDigestMismatch).
var ErrResumeFailed = errors.New("continuing an interrupted transfer failed")

// PartialBlobKeeper is implemented by a destination that keeps what it receives of a blob when
// a copy stops before the blob is complete (a partly written file in a local destination's
// staging, say), so that a later run continues from there, whatever the registry or network
// between. The copy engine asks it about each blob it streams unchanged (no compression
// change), tells the source (GetBlobOptions.DestinationKeeps) that it need not keep a partial
// download of its own, and hands it the bytes the destination can give back
// (GetBlobOptions.Prefix). The OCI layout and dir: destinations implement it when resuming is
// on, staging large blobs in the resume directory's partial downloads (issue 18: a blob
// pulled into them is then written once); the archive destinations too, keeping what
// arrived of a blob in its place in the unfinished archive (copied into the partial download
// only when the copy is interrupted). A registry destination does not implement it: its
// recorded upload session would do only where the registry continues sessions, and CNCF
// distribution 2.x cancels every session an interrupted request left (issue 18 measured the
// trade: 0.3 s of CPU per GiB of registry-to-registry copy, against re-reading the whole
// source after an interruption on such registries).
type PartialBlobKeeper interface {
	// KeepsPartialBlob reports whether the destination keeps what it receives of blob info
	// (known digest and size) when interrupted. When an earlier run left the first n > 0
	// bytes of it and the destination can read them back, prefix reads them; the caller
	// closes it. A PutBlob of the blob stores the whole stream as usual: what the
	// destination held is not trusted, since the source may not have used it (a registry
	// that sent the whole blob), and only the stream is verified.
	KeepsPartialBlob(info BlobInfo) (keeps bool, prefix io.ReadCloser, n int64)
}
