package copy

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// MultiArch selects what to copy when the source is a multi-platform index.
type MultiArch int

const (
	// MultiArchDefault copies every instance plus the index into destinations that can store
	// an index and do not prefer a single platform; otherwise it behaves like MultiArchSystem.
	MultiArchDefault MultiArch = iota
	// MultiArchAll copies every instance plus the index; the destination must accept an index.
	MultiArchAll
	// MultiArchSystem copies only the image for the running platform (with the os/arch/variant
	// overrides of the SystemContexts), written as a single-image manifest.
	MultiArchSystem
	// MultiArchIndexOnly copies only the index manifest, none of its instances; meant for
	// registries that already hold the instances.
	MultiArchIndexOnly
)

// DefaultParallelCopies is the number of layers copied concurrently when ImageParallelCopies is 0.
const DefaultParallelCopies = 6

// Options are the arguments of Image. A nil *Options means all defaults. Fields map one to
// one to CLI flags.
type Options struct {
	// SourceCtx and DestinationCtx are passed to the transports; they may be nil.
	SourceCtx, DestinationCtx *types.SystemContext
	// ForceManifestMIMEType converts to this manifest type ("" keeps the source's type when
	// possible): manifest.DockerV2Schema2MediaType or imgspecv1.MediaTypeImageManifest (any
	// other value is a usage error, types.ErrUsage).
	ForceManifestMIMEType string
	// MultiArch says what to copy from a multi-platform index.
	MultiArch MultiArch
	// Platforms, when non-empty, copies only the instances for these platforms; the written
	// index then lists only them (and its digest changes). Each needs an OS and an
	// architecture (a usage error otherwise).
	Platforms []types.Platform
	// SkipMissingPlatforms, with several Platforms, leaves out those an index has no image for
	// instead of failing the copy, which then fails (types.ErrManifestNotFound) only when the
	// index has none of them: for mirrors that ask every image for the same platforms (regsync's
	// platforms list does not fail on a missing one either).
	SkipMissingPlatforms bool
	// PreserveDigests turns every change that would alter a digest into an error.
	PreserveDigests bool
	// ForceRecursive copies, blob by blob and instance by instance, an image whose top-level
	// manifest the destination already has, instead of trusting that a stored manifest is
	// complete (types.ManifestChecker): each blob is looked up (a HEAD at a registry) and the
	// missing ones are copied, which repairs a destination whose blobs or instance manifests
	// were deleted (regctl's --force-recursive).
	ForceRecursive bool
	// DestinationCompression, "gzip" or "zstd", stores every layer in that format: uncompressed
	// layers are compressed and layers in another format recompressed, and a blob the
	// destination already has (or could mount, or knows as a variant from the cache) is
	// reused only when it has this compression. "" keeps each layer's compression (a
	// destination that needs them may still compress or decompress layers). zstd needs an
	// OCI manifest.
	DestinationCompression string
	// DestinationCompressionLevel is the compression level; nil means the default. gzip takes
	// -2 to 9 (as compress/flate: -2 Huffman only, -1 default, 0 stored), zstd 1 to 22. Without
	// DestinationCompression it applies to the layers a copy compresses anyway, which are gzip.
	DestinationCompressionLevel *int
	// DestinationDecompress stores layers uncompressed.
	DestinationDecompress bool
	// IncludeNonDistributable copies foreign (non-distributable) layers into the destination
	// and writes them as ordinary layers of the distributable type. Without it they are kept
	// as references (descriptor and URLs in the manifest, content not copied) wherever the
	// destination can hold one; a docker-archive, which must contain every layer, still gets
	// their content, with the foreign type kept.
	IncludeNonDistributable bool
	// ForeignLayerFetcher fetches a foreign layer the source does not have from its URLs; nil
	// means such a layer cannot be copied (it can still be kept as a reference).
	ForeignLayerFetcher ForeignLayerFetcher
	// ImageParallelCopies bounds concurrent layer copies; 0 means DefaultParallelCopies.
	ImageParallelCopies int
	// BlobInfoCache remembers digests and locations across copies; nil means a fresh in-memory cache.
	BlobInfoCache types.BlobInfoCache
	// DeferCacheFlush leaves the records a write-behind BlobInfoCache (types.BlobInfoCacheFlusher)
	// still holds to its own batching instead of storing them before the copy returns: for a
	// caller that runs many copies and flushes once after them, as sync does.
	DeferCacheFlush bool
	// Progress receives events; it may be nil. It is called from several goroutines and
	// must return quickly, and never after Image returned (so it may send on a channel the
	// caller closes then).
	Progress func(ProgressEvent)
	// ReportWriter, when set, receives plain progress lines like skopeo's ("Copying blob …").
	ReportWriter io.Writer
	// Referrers also copies, after the image and before it is committed, the artifacts that
	// refer to each manifest written unchanged (signatures, SBOMs, attestations: manifests
	// whose subject it is), and what refers to those, byte for byte (see referrers.go).
	Referrers bool
	// ReferrersTypes, when not empty, limits Referrers to artifacts whose artifactType, read
	// from the artifact's own manifest, is one of these; what refers to an artifact left out
	// is left out too. Without Referrers it is a usage error (it would select nothing).
	ReferrersTypes []string
	// DigestTags also copies the tags named after the digest of each manifest written
	// unchanged, "<alg>-<hex>.*" (cosign's sha256-<hex>.sig, .att and .sbom), byte for byte.
	DigestTags bool
	// Budget, when set, is shared with other copies running at the same time: it replaces
	// ImageParallelCopies as the bound on blobs transferred at once (ImageParallelCopies still
	// bounds the layers this copy works on), and a blob another of them is transferring is
	// awaited instead of fetched twice (see Budget).
	Budget *Budget
	// BudgetScope names the destination store (e.g. the registry) for Budget: only copies with
	// the same scope wait for each other's transfers.
	BudgetScope string
}

// ProgressEventKind says what a ProgressEvent reports.
type ProgressEventKind int

const (
	// EventBlobStarted: a blob transfer started (Size is the source size, -1 when unknown).
	EventBlobStarted ProgressEventKind = iota
	// EventBlobProgress: Offset bytes of the blob have been read from the source.
	EventBlobProgress
	// EventBlobReused: the destination already had the blob; nothing was transferred.
	EventBlobReused
	// EventBlobMounted: the destination got the blob from MountedFrom without a transfer.
	EventBlobMounted
	// EventBlobDone: the blob was stored (Digest and Size as stored).
	EventBlobDone
	// EventBlobFailed: the blob transfer failed with Err.
	EventBlobFailed
	// EventManifestWritten: a manifest (an instance or the top level) was written.
	EventManifestWritten
	// EventBlobSkipped: the blob was deliberately not copied; Reason says why (a foreign
	// layer kept as a reference: ReasonForeignLayer).
	EventBlobSkipped
	// EventBlobResumeDiscarded: a transfer that continued data an earlier, interrupted copy kept
	// failed because of that data (Err says how); the data was discarded and the blob is copied
	// again from the start, with a new EventBlobStarted.
	EventBlobResumeDiscarded
	// EventBlobRetried: the destination's transfer of the blob broke off (Err says how) after
	// it had read from the stream; the blob is transferred again, with a new EventBlobStarted
	// (continuing what either end kept of it).
	EventBlobRetried
)

// ReasonForeignLayer is the Reason of an EventBlobSkipped for a foreign layer kept as a reference.
const ReasonForeignLayer = "foreign layer kept as a reference"

// String returns a short name for the kind, e.g. "blob-started", as used in JSON output.
func (k ProgressEventKind) String() string {
	switch k {
	case EventBlobStarted:
		return "blob-started"
	case EventBlobProgress:
		return "blob-progress"
	case EventBlobReused:
		return "blob-reused"
	case EventBlobMounted:
		return "blob-mounted"
	case EventBlobDone:
		return "blob-done"
	case EventBlobFailed:
		return "blob-failed"
	case EventManifestWritten:
		return "manifest-written"
	case EventBlobSkipped:
		return "blob-skipped"
	case EventBlobResumeDiscarded:
		return "blob-resume-discarded"
	case EventBlobRetried:
		return "blob-retried"
	}
	return "unknown"
}

// ProgressEvent is one step of a copy, delivered to Options.Progress.
type ProgressEvent struct {
	Kind      ProgressEventKind
	Digest    digest.Digest
	MediaType string
	Size      int64 // -1 when unknown
	Offset    int64 // bytes read so far, for EventBlobProgress and EventBlobDone
	// Resumed is how many of the blob's bytes were not transferred again because an earlier,
	// interrupted copy had (a partial download read from disk, an upload session the
	// destination continued): for EventBlobStarted what the source kept, for EventBlobDone and
	// EventBlobResumeDiscarded the larger of what either end kept.
	Resumed     int64
	MountedFrom string
	Reason      string // why a blob was skipped (EventBlobSkipped)
	Err         error
}

// InstanceResult describes one image written by a copy: the chosen image of a single-image
// copy, or each instance of a copied index.
type InstanceResult struct {
	SourceDigest digest.Digest   // the manifest digest at the source
	Digest       digest.Digest   // the manifest digest as written (differs after a conversion)
	MIMEType     string          // the manifest type as written
	Platform     *types.Platform // from the source index; nil for a single-image source
}

// Result describes a finished copy.
type Result struct {
	// ManifestDigest, MIMEType and Manifest are the top-level manifest as written.
	ManifestDigest digest.Digest
	MIMEType       string
	Manifest       []byte
	// SourceDigest is the digest of the source's top-level manifest as it was read.
	SourceDigest digest.Digest
	// Instances lists every image written (one for a single-image copy).
	Instances []InstanceResult
	// DigestChanged is true when the written top-level manifest differs from the source
	// manifest it was made from (the index, or the chosen instance when one platform was copied).
	DigestChanged bool
	// BytesCopied counts bytes read from the source for transferred blobs; BytesReused the
	// source sizes of blobs the destination already had.
	BytesCopied, BytesReused int64
	// BlobsCopied and BlobsReused count blobs; identical blobs within a copy count once.
	BlobsCopied, BlobsReused int
	// BytesResumed counts the bytes of copied blobs that were not transferred again because an
	// earlier, interrupted copy had (per blob, the larger of what the source's partial download
	// and the destination's continued upload held); they are part of BytesCopied.
	BytesResumed int64
	// ResumesDiscarded counts blobs whose kept data failed verification (or was refused by the
	// destination): it was discarded and the blob copied again from the start.
	ResumesDiscarded int
	// AlreadyPresent is true when the destination already stored the top-level manifest with
	// everything it references (a warm re-copy): only that manifest was written again, to
	// (re)name it. No blob was checked or copied, so the blob and byte counts are 0, and
	// Instances lists only the direct instances of an index.
	AlreadyPresent bool
	// Related lists the referrers and digest tags copied with the image (Options.Referrers,
	// Options.DigestTags), in the order they were handled.
	Related []RelatedResult
	// LeftOut says, one line each, what related manifests were not copied and why (a
	// destination that cannot hold them, a subject whose digest changed); each was also
	// logged as a warning.
	LeftOut []string
}

// copier holds the state of one Image call.
type copier struct {
	src       types.ImageSource
	dest      types.ImageDestination
	srcRef    types.ImageReference
	destRef   types.ImageReference
	opts      Options
	cache     types.BlobInfoCache
	srcProps  types.SourceProperties
	destProps types.DestinationProperties
	report    *reporter
	blobs     *blobGroup
	// slots bounds the blobs transferred at once across all instances of an index to
	// parallelism(); only the caller that transfers a blob holds a slot, not those waiting
	// for it in blobs, so waiting never starves a transfer. Small configs take none.
	slots chan struct{}
	// manifestMu serializes the source's GetManifest and the destination's PutManifest, which
	// instances copied side by side would otherwise call concurrently; a side whose properties
	// say ConcurrentManifests does not take it.
	manifestMu sync.Mutex

	bytesCopied, bytesReused atomic.Int64
	blobsCopied, blobsReused atomic.Int64
	bytesResumed             atomic.Int64
	resumesDiscarded         atomic.Int64
	compressing              atomic.Int32 // layers being compressed right now
	alreadyPresent           bool         // set by skipIfPresent, before any concurrent work
	cacheFlushed             bool         // run flushed the cache (alongside Commit)
}

// Image copies the image srcRef names to destRef and returns what was written. The
// destination is committed only when every blob and manifest was written; on any failure
// nothing is committed and both ends are closed.
func Image(ctx context.Context, destRef, srcRef types.ImageReference, opts *Options) (res *Result, retErr error) {
	if err := types.RequireReferences("copying an image", destRef, srcRef); err != nil {
		return nil, err
	}
	o := withDefaults(opts)
	if err := validateOptions(&o); err != nil {
		return nil, types.UsageError{Err: err}
	}
	if w, ok := destRef.(types.ReferenceWarmer); ok {
		// The destination's registry answers its ping while the source opens.
		stop := w.Warm(ctx, o.DestinationCtx)
		defer stop()
	}
	src, err := srcRef.NewImageSource(ctx, o.SourceCtx)
	if err != nil {
		return nil, errors.Wrap(err, "opening source") // the transport names the image
	}
	defer func() { retErr = types.AddCloseError(retErr, src.Close(), "closing source "+types.ImageName(srcRef)) }()
	dest, err := destRef.NewImageDestination(ctx, o.DestinationCtx)
	if err != nil {
		return nil, errors.Wrap(err, "opening destination")
	}
	defer func() {
		retErr = types.AddCloseError(retErr, dest.Close(), "closing destination "+types.ImageName(destRef))
	}()

	c := newCopier(src, dest, srcRef, destRef, o)
	defer func() {
		if !c.cacheFlushed && !o.DeferCacheFlush {
			flushCache(o.BlobInfoCache)
		}
	}()
	res, err = c.run(ctx)
	if err != nil {
		return nil, errors.Wrapf(err, "copying image %s to %s", types.ImageName(srcRef), types.ImageName(destRef))
	}
	return res, nil
}

func withDefaults(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ImageParallelCopies <= 0 {
		o.ImageParallelCopies = DefaultParallelCopies
	}
	if o.BlobInfoCache == nil {
		o.BlobInfoCache = newDefaultCache()
	}
	return o
}

func validateOptions(o *Options) error {
	switch o.DestinationCompression {
	case "", compressionGzip, compressionZstd:
	default:
		return errors.Errorf("unknown destination compression %q (want gzip or zstd)", o.DestinationCompression)
	}
	if len(o.ReferrersTypes) > 0 && !o.Referrers {
		// As the CLI's --referrers-type without --referrers: the caller expects referrers.
		return errors.New("ReferrersTypes limits Referrers, which is off")
	}
	if o.MultiArch < MultiArchDefault || o.MultiArch > MultiArchIndexOnly {
		return errors.Errorf("unknown MultiArch value %d", o.MultiArch)
	}
	for _, p := range o.Platforms {
		// Such a platform matches no image: ParsePlatform refuses it on a command line.
		if p.OS == "" || p.Architecture == "" {
			return errors.Errorf("platform %q needs an OS and an architecture", manifest.FormatPlatform(p))
		}
	}
	if f := o.ForceManifestMIMEType; f != "" && !isConversionTarget(f) {
		return errors.Errorf("forcing manifest type %s: only %s and %s can be written by conversion",
			f, manifest.DockerV2Schema2MediaType, imgspecv1.MediaTypeImageManifest)
	}
	if o.DestinationCompression != "" && o.DestinationDecompress {
		return errors.New("destination compression and decompression are both requested")
	}
	if l := o.DestinationCompressionLevel; l != nil {
		lo, hi, alg := -2, 9, compressionGzip // without a format only gzip is ever written
		if o.DestinationCompression == compressionZstd {
			lo, hi, alg = 1, 22, compressionZstd
		}
		if *l < lo || *l > hi {
			return errors.Errorf("%s compression level %d out of range (%d to %d)", alg, *l, lo, hi)
		}
	}
	return nil
}

func newCopier(src types.ImageSource, dest types.ImageDestination, srcRef, destRef types.ImageReference, o Options) *copier {
	c := &copier{
		src: src, dest: dest, srcRef: srcRef, destRef: destRef, opts: o,
		cache:     o.BlobInfoCache,
		srcProps:  src.Properties(),
		destProps: dest.Properties(),
		report:    &reporter{fn: o.Progress, w: o.ReportWriter},
		blobs:     newBlobGroup(),
	}
	c.slots = make(chan struct{}, c.parallelism())
	if o.Budget != nil {
		c.slots = o.Budget.slots
	}
	return c
}

// run is the whole copy after opening: read the top-level manifest, copy an index or a
// single image, commit.
func (c *copier) run(ctx context.Context) (*Result, error) {
	if n, ok := c.dest.(types.ManifestNamer); ok && !c.opts.Referrers && !c.opts.DigestTags {
		n.NameOnPut() // nothing is written between the top-level manifest and Commit
	}
	manBlob, mimeType, err := c.getManifest(ctx, nil)
	if err != nil {
		return nil, err
	}
	var res *Result
	if isIndexType(mimeType) {
		res, err = c.copyTopIndex(ctx, manBlob, mimeType)
	} else {
		res, err = c.copyTopSingle(ctx, manBlob, mimeType)
	}
	if err != nil {
		return nil, err
	}
	if err := c.copyRelated(ctx, res, manBlob, mimeType); err != nil {
		return nil, errors.Wrap(err, "copying the image's referrers and digest tags (the image was not tagged at the destination)")
	}
	commit := types.CommitOptions{SourceReference: c.srcRef}
	if len(c.opts.Platforms) > 0 {
		commit.Platform = &c.opts.Platforms[0]
	}
	// The write-behind cache stores its records while the destination commits (both mostly
	// wait for fsyncs), not after it. Destinations record nothing in Commit.
	c.cacheFlushed = true
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		if !c.opts.DeferCacheFlush {
			flushCache(c.cache)
		}
	}()
	err = c.dest.Commit(ctx, commit)
	<-flushed
	if err != nil {
		return nil, errors.Wrapf(err, "committing %s", types.ImageName(c.destRef))
	}
	res.BytesCopied, res.BytesReused = c.bytesCopied.Load(), c.bytesReused.Load()
	res.BlobsCopied, res.BlobsReused = int(c.blobsCopied.Load()), int(c.blobsReused.Load())
	res.AlreadyPresent = c.alreadyPresent
	res.BytesResumed, res.ResumesDiscarded = c.bytesResumed.Load(), int(c.resumesDiscarded.Load())
	res.SourceDigest, _ = manifest.Digest(manBlob) // it parsed above, so it has a digest
	return res, nil
}

// copyTopSingle copies a single-image source to the top level of the destination.
func (c *copier) copyTopSingle(ctx context.Context, manBlob []byte, mimeType string) (*Result, error) {
	if c.opts.MultiArch == MultiArchIndexOnly {
		return nil, errors.Errorf("copying only the index: source manifest is %s, not an index", mimeType)
	}
	if len(c.opts.Platforms) > 0 {
		logrus.WithFields(logrus.Fields{"type": mimeType}).Debug("source is a single image: platform selection ignored")
	}
	w, err := c.copySingle(ctx, manBlob, mimeType, nil)
	if err != nil {
		return nil, err
	}
	return w.result(nil), nil
}

// shortDigest renders a digest for report lines: the algorithm and 12 hex digits.
func shortDigest(d digest.Digest) string {
	s := string(d)
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) <= 12 {
		return s
	}
	return alg + ":" + hex[:12]
}
