package copy

import (
	"bytes"
	"context"
	"io"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/ctxio"
	"github.com/imgcopy/imgcopy/internal/verify"
	"github.com/imgcopy/imgcopy/types"
)

// blobJob is one blob to copy: a layer or a config.
type blobJob struct {
	info           types.BlobInfo // as the source manifest lists it
	plan           layerPlan
	isConfig       bool
	layerIndex     int                // -1 for configs
	expectedDiffID digest.Digest      // from the config; "" when unknown
	needDiffID     bool               // the uncompressed digest must be known (schema1 conversion)
	foreign        bool               // a foreign layer: fetched from its URLs when the source lacks it
	reuse          types.ReuseOptions // what TryReusingBlob may accept (see planReuse), without Cache and SourceReference
	data           []byte             // the content when already in memory (configs), else nil
}

func (j *blobJob) key() string {
	k := string(j.info.Digest) + "|" + j.plan.Action.String() + "|" + j.plan.To
	if j.needDiffID {
		k += "|diffid"
	}
	return k
}

func (j *blobJob) kind() string {
	if j.isConfig {
		return "config"
	}
	return "blob"
}

// blobResult is a blob as the destination holds it.
type blobResult struct {
	Info   types.BlobInfo
	DiffID digest.Digest // the uncompressed digest when known
}

// blobGroup transfers each blob once per copy: concurrent requests for the same blob wait for
// the first one, and later ones (other instances of an index) get its result.
type blobGroup struct {
	mu      sync.Mutex
	flights map[string]*blobFlight
}

type blobFlight struct {
	done chan struct{}
	res  blobResult
	err  error
}

func newBlobGroup() *blobGroup { return &blobGroup{flights: map[string]*blobFlight{}} }

// do runs fn for key unless it ran or is running already; shared reports a result obtained by another caller.
func (g *blobGroup) do(ctx context.Context, key string, fn func() (blobResult, error)) (res blobResult, shared bool, err error) {
	g.mu.Lock()
	if f, ok := g.flights[key]; ok {
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.res, true, f.err
		case <-ctx.Done():
			return blobResult{}, true, ctx.Err()
		}
	}
	f := &blobFlight{done: make(chan struct{})}
	g.flights[key] = f
	g.mu.Unlock()
	f.res, f.err = fn()
	close(f.done)
	return f.res, false, f.err
}

// copyBlob copies one blob at most once per copy: reuse at the destination if possible,
// else stream it through the reader chain.
func (c *copier) copyBlob(ctx context.Context, job *blobJob) (blobResult, error) {
	if err := ctx.Err(); err != nil {
		return blobResult{}, err
	}
	res, shared, err := c.blobs.do(ctx, job.key(), func() (blobResult, error) {
		if b := c.opts.Budget; b != nil {
			return b.transfer(ctx, c.opts.BudgetScope+"\x00"+job.key(), func() (blobResult, error) { return c.reuseOrStream(ctx, job) })
		}
		return c.reuseOrStream(ctx, job)
	})
	if shared && err == nil {
		logrus.WithFields(logrus.Fields{"digest": job.info.Digest}).Debug("blob already copied in this copy")
		c.report.line("Copying %s %s skipped: already copied", job.kind(), shortDigest(job.info.Digest))
	}
	return res, err
}

// slotFreeConfigSize is the largest config that takes no transfer slot (see reuseOrStream).
const slotFreeConfigSize = 1 << 20

// reuseOrStream takes a transfer slot, then reuses the blob at the destination if possible,
// else transfers it. A config of up to slotFreeConfigSize (its size as the manifest says,
// checked as it streams) takes no slot: its copy is a few round trips, not bandwidth, and
// behind six large layers on a slow link it would otherwise wait for one of them to finish,
// then add its round trips to the end of the copy.
func (c *copier) reuseOrStream(ctx context.Context, job *blobJob) (blobResult, error) {
	if !job.isConfig || job.info.Size < 0 || job.info.Size > slotFreeConfigSize {
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		case <-ctx.Done():
			return blobResult{}, ctx.Err()
		}
	}
	if res, ok, err := c.tryReuse(ctx, job); err != nil || ok {
		return res, err
	}
	return c.streamBlob(ctx, job)
}

// tryReuse asks the destination whether it has the blob already (or can mount it).
func (c *copier) tryReuse(ctx context.Context, job *blobJob) (blobResult, bool, error) {
	res := blobResult{}
	if job.needDiffID {
		// A reused blob is not streamed, so its diff ID must come from the cache.
		if res.DiffID = c.cache.UncompressedDigest(job.info.Digest); res.DiffID == "" {
			logrus.WithFields(logrus.Fields{"digest": job.info.Digest}).Debug("not trying blob reuse: uncompressed digest unknown")
			return res, false, nil
		}
	}
	opts := job.reuse
	opts.Cache, opts.SourceReference = c.cache, c.srcRef
	reused, ok, err := c.dest.TryReusingBlob(ctx, job.info, opts)
	if err != nil {
		return res, false, errors.Wrapf(err, "checking for %s at %s", job.info.Digest, types.ImageName(c.destRef))
	}
	if !ok {
		return res, false, nil
	}
	res.Info = reusedInfo(job, reused.Info)
	fields := logrus.Fields{"digest": job.info.Digest, "stored": res.Info.Digest, "mountedFrom": reused.MountedFrom}
	ev := ProgressEvent{Kind: EventBlobReused, Digest: res.Info.Digest, MediaType: res.Info.MediaType, Size: res.Info.Size, MountedFrom: reused.MountedFrom}
	if reused.MountedFrom != "" {
		ev.Kind = EventBlobMounted
		logrus.WithFields(fields).Debug("blob mounted at destination")
		c.report.line("Copying %s %s skipped: mounted from %s", job.kind(), shortDigest(job.info.Digest), reused.MountedFrom)
	} else {
		logrus.WithFields(fields).Debug("blob reused at destination")
		c.report.line("Copying %s %s skipped: already exists", job.kind(), shortDigest(job.info.Digest))
	}
	if reused.Kept && res.Info.Size > 0 {
		ev.Resumed = res.Info.Size
		c.bytesResumed.Add(res.Info.Size)
	}
	c.report.event(ev)
	c.blobsReused.Add(1)
	if job.info.Size > 0 {
		c.bytesReused.Add(job.info.Size)
	}
	return res, true, nil
}

// reusedInfo completes the blob info a destination returned for a reused blob. A blob with
// the source digest keeps the source's description. A substitute is described with the
// plan's media type when the reuse required the plan's compression (the destination may
// only know the source's type), else with the type the destination gave, or the plan's.
func reusedInfo(job *blobJob, got types.BlobInfo) types.BlobInfo {
	info := job.info
	if got.Digest == "" || got.Digest == job.info.Digest {
		if got.Size >= 0 && info.Size < 0 {
			info.Size = got.Size
		}
		return retyped(job, info)
	}
	info.Digest, info.Size, info.MediaType = got.Digest, got.Size, got.MediaType
	if info.MediaType == "" || job.reuse.RequiredCompression != "" {
		info.MediaType = job.plan.MediaType
	}
	return retyped(job, info)
}

// retyped gives an included foreign layer its distributable type; its URLs no longer apply.
func retyped(job *blobJob, info types.BlobInfo) types.BlobInfo {
	if job.plan.Retyped {
		info.MediaType, info.URLs = job.plan.MediaType, nil
	}
	return info
}

// blobChain is the reader chain of one blob transfer.
type blobChain struct {
	reader   *recordingReader // what PutBlob reads
	file     *fileStream      // what PutBlob is given instead when it may take the file; else nil
	diff     *uncompressedDigest
	stops    []func() // run in reverse order once PutBlob returned
	srcBytes *int64
}

func (ch *blobChain) stop() {
	for i := len(ch.stops) - 1; i >= 0; i-- {
		ch.stops[i]()
	}
}

// transferBlob transfers one blob: source GetBlob → verify → transform → progress → PutBlob.
// fresh asks both ends not to continue what an earlier run kept; attempt counts the earlier
// transfers that broke off (types.StreamRetryError). retry reports a failure that another
// transfer may not have (see retryFresh, types.StreamRetryError); it is then reported as such,
// not as a failure.
func (c *copier) transferBlob(ctx context.Context, job *blobJob, fresh bool, attempt int) (_ blobResult, retry transferRetry, _ error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kept := &keptBytes{}
	rc, size, err := c.openBlob(ctx, job, fresh, kept)
	if err != nil {
		return blobResult{}, retryNone, err
	}
	defer rc.Close()
	info := job.info
	if info.Size < 0 {
		info.Size = size
	}
	logrus.WithFields(logrus.Fields{"digest": info.Digest, "size": info.Size, "action": job.plan.Action, "resumed": kept.source}).Debug("blob transfer started")
	c.report.event(ProgressEvent{Kind: EventBlobStarted, Digest: info.Digest, MediaType: info.MediaType, Size: info.Size, Resumed: kept.source})
	var src io.Reader = rc
	var fs *fileStream
	if f := sendableFile(rc, job, info, kept); f != nil {
		src, fs = newFileStream(f, info.Size)
	}
	ch, err := c.buildChain(ctx, src, info, job)
	if err != nil {
		return blobResult{}, retryNone, err
	}
	if fs != nil {
		fs.chain, ch.file = ch.reader, fs
	}
	stored, err := c.putBlob(ctx, ch, info, job, fresh, attempt, kept)
	cancel() // unblocks transport reads still pending in transform goroutines
	ch.stop()
	if err != nil {
		retry = retryNone
		kind := EventBlobFailed
		var broke *types.StreamRetryError
		switch {
		case !fresh && retryFresh(err, kept):
			retry, kind = retryDiscarding, EventBlobResumeDiscarded
		case attempt < maxStreamRetries && errors.As(err, &broke):
			retry, kind = retryStream, EventBlobRetried
		}
		c.report.event(ProgressEvent{Kind: kind, Digest: info.Digest, MediaType: info.MediaType, Size: info.Size, Resumed: kept.bytes(), Err: err})
		return blobResult{}, retry, err
	}
	res := c.finishBlob(job, info, stored, ch, kept)
	return res, retryNone, nil
}

func (c *copier) openBlob(ctx context.Context, job *blobJob, fresh bool, kept *keptBytes) (io.ReadCloser, int64, error) {
	if job.data != nil {
		return io.NopCloser(bytes.NewReader(job.data)), int64(len(job.data)), nil
	}
	opts := types.GetBlobOptions{Cache: c.cache, NoResume: fresh}
	prefix := c.destinationKeeps(job, fresh, &opts)
	rc, size, err := c.src.GetBlob(ctx, job.info, opts)
	if prefix != nil && err != nil {
		prefix.Close()
	}
	if err != nil && job.foreign && errors.Is(err, types.ErrBlobNotFound) && len(job.info.URLs) > 0 {
		return c.fetchForeign(ctx, job, err)
	}
	if err != nil {
		return nil, -1, errors.Wrapf(err, "fetching from %s", types.ImageName(c.srcRef))
	}
	if rr, ok := rc.(types.ResumedReader); ok {
		kept.source = rr.ResumedBytes()
	}
	kept.offered = prefix != nil
	if prefix != nil {
		rc = &closeBoth{ReadCloser: rc, also: prefix}
	}
	return rc, size, nil
}

// buildChain assembles the readers between the source stream and PutBlob.
func (c *copier) buildChain(ctx context.Context, rc io.Reader, info types.BlobInfo, job *blobJob) (_ *blobChain, retErr error) {
	ch := &blobChain{}
	defer func() {
		if retErr != nil {
			ch.stop()
		}
	}()
	// ctxio stops a cancelled copy promptly even when the source stream ignores ctx.
	vr, err := verify.NewReader(errorAnnotationReader{r: ctxio.Reader(ctx, rc), srcRef: c.srcRef}, info.Digest, info.Size)
	if err != nil {
		return nil, err
	}
	pr := &progressReader{r: vr, rep: c.report, info: info}
	var r io.Reader = pr
	ch.srcBytes = &pr.offset
	u := &uncompressedDigest{layer: info.Digest, expected: job.expectedDiffID}
	switch job.plan.Action {
	case layerDecompress, layerRecompress:
		dr, stop, err := decompressVerified(r, u)
		if err != nil {
			return nil, errors.Wrapf(err, "decompressing layer %s", info.Digest)
		}
		r, ch.diff = dr, u
		ch.stops = append(ch.stops, stop)
	case layerKeep:
		if job.needDiffID {
			sr, stop := sideDigest(r, u)
			r, ch.diff = sr, u
			ch.stops = append(ch.stops, stop)
		}
	case layerCompress:
		u.actual, u.from = info.Digest, compressionNone // an uncompressed layer is its own diff ID
		ch.diff = u
	}
	if job.plan.Action == layerCompress || job.plan.Action == layerRecompress {
		// Layers copied in parallel already use every core; a per-core compressor for each of
		// them would multiply memory, so only the first maxParallelCompressors layers being
		// compressed at a time get one (issue 8: the 60-layer docker-archive push peaked at
		// 150 MiB with pgzip for every layer).
		parallel := c.compressing.Add(1) <= maxParallelCompressors
		cr, stop, err := compressPipe(r, job.plan.To, c.opts.DestinationCompressionLevel, parallel)
		if err != nil {
			c.compressing.Add(-1)
			return nil, err
		}
		r = cr
		ch.stops = append(ch.stops, func() { stop(); c.compressing.Add(-1) })
	}
	ch.reader = &recordingReader{r: r}
	return ch, nil
}

// putBlob hands the chain to the destination. A failure of the chain (source read,
// verification, transform) is reported as such, whatever the destination made of it.
func (c *copier) putBlob(ctx context.Context, ch *blobChain, info types.BlobInfo, job *blobJob, fresh bool, attempt int, kept *keptBytes) (types.BlobInfo, error) {
	putInfo := info
	if job.plan.transforms() {
		putInfo = types.BlobInfo{Digest: "", Size: -1, MediaType: job.plan.MediaType, URLs: info.URLs, Annotations: info.Annotations}
	}
	layerIndex := job.layerIndex
	if job.isConfig {
		layerIndex = -1
	}
	// The chain verifies the stream against info and fails at EOF on a mismatch, so a
	// destination given that digest need not hash the bytes a second time.
	opts := types.PutBlobOptions{Cache: c.cache, IsConfig: job.isConfig, LayerIndex: layerIndex, Verified: putInfo.Digest != "",
		NoResume: fresh, Resumed: kept.setDestination, Attempt: attempt}
	var stream io.Reader = ch.reader
	if ch.file != nil {
		stream = ch.file
	}
	stored, err := c.dest.PutBlob(ctx, stream, putInfo, opts)
	if ch.file != nil {
		ch.file.finish(err != nil) // a destination that took the file: the chain's verdict
	}
	if err == nil && !ch.reader.sawEOF() {
		// The destination did not read to EOF; finish reading so the blob is still verified.
		_, err = io.Copy(io.Discard, ch.reader)
	}
	if cerr := ch.reader.chainError(); cerr != nil {
		return stored, cerr
	}
	if err != nil {
		return stored, errors.Wrapf(err, "writing to %s", types.ImageName(c.destRef))
	}
	return stored, nil
}

// finishBlob records what was learnt about a transferred blob and reports it.
func (c *copier) finishBlob(job *blobJob, info, stored types.BlobInfo, ch *blobChain, kept *keptBytes) blobResult {
	res := blobResult{Info: info}
	if job.plan.transforms() {
		res.Info.Digest, res.Info.Size, res.Info.MediaType = stored.Digest, stored.Size, job.plan.MediaType
	} else if stored.Digest != "" && stored.Digest != info.Digest {
		logrus.WithFields(logrus.Fields{"digest": info.Digest, "stored": stored.Digest}).Debug("destination stored the blob under another digest")
		res.Info.Digest, res.Info.Size = stored.Digest, stored.Size
	}
	if res.Info.Size < 0 {
		res.Info.Size = stored.Size
	}
	if ch.diff != nil && ch.diff.actual != "" {
		res.DiffID = ch.diff.actual
		c.cache.RecordDigestUncompressedPair(info.Digest, res.DiffID)
		c.cache.RecordDigestUncompressedPair(res.Info.Digest, res.DiffID)
		c.cache.RecordDigestCompressorName(info.Digest, compressorName(ch.diff.from))
	}
	if job.plan.transforms() {
		c.cache.RecordDigestCompressorName(res.Info.Digest, compressorName(job.plan.To))
	}
	res.Info = retyped(job, res.Info)
	n, resumed := *ch.srcBytes, kept.bytes()
	c.blobsCopied.Add(1)
	c.bytesCopied.Add(n)
	c.bytesResumed.Add(resumed)
	logrus.WithFields(logrus.Fields{"digest": info.Digest, "stored": res.Info.Digest, "size": res.Info.Size, "read": n, "resumed": resumed}).Debug("blob transfer done")
	c.report.event(ProgressEvent{Kind: EventBlobDone, Digest: res.Info.Digest, MediaType: res.Info.MediaType, Size: res.Info.Size, Offset: n, Resumed: resumed})
	c.report.line("Copying %s %s done", job.kind(), shortDigest(info.Digest))
	return res
}
