package sync

import (
	gosync "sync"

	copier "github.com/imgcopy/imgcopy/copy"
)

// blobTally counts, from a copy's progress events, what it transferred and reused, so that
// an image that failed or was stopped half-way is reported with what it moved (a failed copy
// returns no copier.Result).
type blobTally struct {
	mu                                     gosync.Mutex
	blobsCopied, blobsReused               int
	blobsMounted                           int // of blobsReused: got from another repository
	bytesCopied, bytesReused, bytesResumed int64
}

// add counts ev as the copy engine counts it in its Result; called from several goroutines.
func (t *blobTally) add(ev copier.ProgressEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev.Kind {
	case copier.EventBlobDone:
		t.blobsCopied++
		t.bytesCopied += ev.Offset
		t.bytesResumed += ev.Resumed
	case copier.EventBlobReused, copier.EventBlobMounted:
		if ev.Kind == copier.EventBlobMounted {
			t.blobsMounted++
		}
		t.blobsReused++
		t.bytesReused += max(ev.Size, 0)
		t.bytesResumed += ev.Resumed
	}
}

// into records the counts in res.
func (t *blobTally) into(res *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res.BlobsCopied, res.BlobsReused = t.blobsCopied, t.blobsReused
	res.BytesCopied, res.BytesReused, res.BytesResumed = t.bytesCopied, t.bytesReused, t.bytesResumed
}

// mounted returns how many reused blobs the destination got from another repository: blobs
// its repository lacked.
func (t *blobTally) mounted() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blobsMounted
}
