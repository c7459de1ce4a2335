package copy

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/types"
)

// Resuming (issue 17): the transports keep what an interrupted transfer leaves behind, and a
// later copy continues from it. The engine's part is to count what was resumed, and to copy a
// blob once more from the start when the kept data proves bad: the verifier still sees every
// byte of a resumed stream, so altered kept data fails the digest check at the end like any
// corruption, and nothing of it becomes visible.

// keptBytes counts what one blob transfer took from data an earlier run kept: the start of the
// source stream (types.ResumedReader) and what the destination already held
// (types.PutBlobOptions.Resumed).
type keptBytes struct {
	source      int64
	destination atomic.Int64 // set from PutBlob, which may run the callback on its own goroutine
	// offered: the source was given the bytes the destination kept to start from
	// (types.GetBlobOptions.Prefix); its stream then says how many it used, and the
	// destination's count (bytes it did not write again) says nothing of what the network
	// sent again when the registry ignored the Range request.
	offered bool
}

func (k *keptBytes) setDestination(n int64) { k.destination.Store(n) }

// bytes is what the transfer did not move again: the larger of the two sides, since the
// same bytes are often kept at both ends of a registry-to-registry copy; the source's alone
// when it was offered the destination's kept bytes.
func (k *keptBytes) bytes() int64 {
	if k.offered {
		return k.source
	}
	return max(k.source, k.destination.Load())
}

// retryFresh reports whether a failed transfer should be repeated from the start: the
// destination could not complete what it continued (types.ErrResumeFailed), or a stream that
// started with kept bytes failed verification.
func retryFresh(err error, kept *keptBytes) bool {
	return errors.Is(err, types.ErrResumeFailed) || (kept.source > 0 && errors.Is(err, types.ErrDigestMismatch))
}

// transferRetry says whether and how a failed blob transfer is made again.
type transferRetry int

const (
	retryNone       transferRetry = iota
	retryDiscarding               // from the start, discarding what an earlier run kept (retryFresh)
	retryStream                   // with a new stream: the destination's transfer broke off (types.StreamRetryError)
)

// maxStreamRetries bounds the transfers of one blob that end in types.StreamRetryError, in case
// a destination does not bound them itself (through PutBlobOptions.Attempt).
const maxStreamRetries = 20

// streamBlob transfers one blob, once more from the start (the kept data discarded at both
// ends) when a transfer that resumed failed because of what it resumed, and again (continuing
// what either end kept) as often as the destination asks when its transfer broke off.
func (c *copier) streamBlob(ctx context.Context, job *blobJob) (blobResult, error) {
	fresh := false
	for attempt := 0; ; {
		res, retry, err := c.transferBlob(ctx, job, fresh, attempt)
		switch {
		case retry == retryNone || ctx.Err() != nil:
			return res, err
		case retry == retryDiscarding:
			logrus.WithFields(logrus.Fields{"digest": job.info.Digest, "error": err}).
				Warn("data kept from an interrupted copy did not verify; discarded it and copying the blob again from the start")
			c.report.line("Copying %s %s: data kept from an interrupted copy did not verify; copying it again", job.kind(), shortDigest(job.info.Digest))
			c.resumesDiscarded.Add(1)
			fresh = true
		default:
			attempt++
			logrus.WithFields(logrus.Fields{"digest": job.info.Digest, "attempt": attempt, "error": err}).
				Debug("blob transfer broke off; transferring the blob again")
		}
	}
}

// destinationKeeps asks a destination that keeps what it receives of a blob when interrupted
// (types.PartialBlobKeeper) about job's blob, and tells the source in opts: it then keeps no
// partial download of its own, and starts from the bytes the destination kept, when it has
// them. Only for blobs stored as they come (what the destination kept is then the blob's
// first bytes) and of known digest and size. The returned prefix, if any, is the caller's to
// close.
func (c *copier) destinationKeeps(job *blobJob, fresh bool, opts *types.GetBlobOptions) io.Closer {
	keeper, ok := c.dest.(types.PartialBlobKeeper)
	if !ok || job.plan.transforms() || job.info.Digest == "" || job.info.Size < 0 {
		return nil
	}
	keeps, prefix, n := keeper.KeepsPartialBlob(job.info)
	opts.DestinationKeeps = keeps
	if prefix == nil {
		return nil
	}
	if !keeps || fresh || n <= 0 || n > job.info.Size {
		prefix.Close()
		return nil
	}
	opts.Prefix, opts.PrefixSize = prefix, n
	return prefix
}

// closeBoth is a source stream that also closes what it was given to read from.
type closeBoth struct {
	io.ReadCloser
	also io.Closer
}

func (c *closeBoth) Close() error {
	err := c.ReadCloser.Close()
	c.also.Close()
	return err
}
