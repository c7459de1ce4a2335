package types

import (
	"context"
	"io"
	"os"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageTransport is a way to reach images: a registry, an archive format or a directory layout.
type ImageTransport interface {
	// Name returns the transport prefix, e.g. "docker" or "oci-archive".
	Name() string
	// ParseReference parses the part of an image name after "NAME:".
	ParseReference(ref string) (ImageReference, error)
}

// ImageReference names one image (or one multi-platform index) within a transport.
// References are values: parsing one never touches disk or network.
type ImageReference interface {
	Transport() ImageTransport
	// StringWithinTransport returns the reference as the user would type it after "NAME:";
	// ParseReference of it yields an equivalent reference.
	StringWithinTransport() string
	// DockerReference returns the registry-style name the image carries (a tag or digest
	// in the reference, a RepoTag in an archive), or nil when it has none.
	DockerReference() reference.Named
	// NewImageSource opens the image for reading. The caller must Close it. Errors from it and
	// from NewImageDestination name the image (types.ImageName), so callers need not repeat it.
	NewImageSource(ctx context.Context, sys *SystemContext) (ImageSource, error)
	// NewImageDestination opens the image for writing. The caller must Close it.
	NewImageDestination(ctx context.Context, sys *SystemContext) (ImageDestination, error)
}

// ImageDeleter is implemented by references whose images can be deleted (a registry
// manifest, a name in an OCI layout with garbage collection of unreferenced blobs).
type ImageDeleter interface {
	DeleteImage(ctx context.Context, sys *SystemContext) error
}

// TagLister is implemented by references whose storage can list the tags (names) it holds.
type TagLister interface {
	ListTags(ctx context.Context, sys *SystemContext) ([]string, error)
}

// ImageName renders a reference as "transport:reference", the form users type and the form
// used in error messages.
func ImageName(ref ImageReference) string {
	if ref == nil {
		return "<nil reference>"
	}
	return ref.Transport().Name() + ":" + ref.StringWithinTransport()
}

// BlobInfo describes a blob. Size -1 means unknown; 0 is a real, empty blob.
// It never carries instructions about what to do with the blob.
type BlobInfo struct {
	Digest      digest.Digest
	Size        int64
	MediaType   string
	URLs        []string
	Annotations map[string]string
}

// SourceProperties are facts about an ImageSource that stay fixed while it is open.
type SourceProperties struct {
	// ConcurrentBlobs is true when GetBlob may be called from several goroutines at once.
	ConcurrentBlobs bool
	// ConcurrentManifests is true when GetManifest may be called from several goroutines at
	// once and while the destination writes manifests; otherwise a copy makes one manifest
	// call at a time (see the call order in doc.go).
	ConcurrentManifests bool
}

// GetBlobOptions are the optional arguments of ImageSource.GetBlob.
type GetBlobOptions struct {
	Cache BlobInfoCache // may be nil
	// NoResume makes the source discard, rather than continue from, data an earlier run kept
	// of this blob (see ResumedReader): the copy engine sets it when fetching a blob again
	// after a resumed stream failed verification.
	NoResume bool
	// DestinationKeeps is set by a caller whose destination keeps what it receives of this
	// blob when the copy is interrupted (PartialBlobKeeper): the source then keeps no partial
	// download of its own, which would store the same bytes a second time.
	DestinationKeeps bool
	// Prefix, when not nil, reads the first PrefixSize bytes of the blob, which the
	// destination kept from an earlier, interrupted run (PartialBlobKeeper). A source that
	// can fetch a blob from an offset streams them first and fetches only the rest (its
	// stream then implements ResumedReader); one that cannot ignores them.
	Prefix     io.Reader
	PrefixSize int64
}

// ImageSource reads one image (and, for an index, its instances).
//
// GetBlob returns a stream and its size (-1 when unknown); the caller closes the stream.
// A source does not need to verify what it serves: the copy engine checks every blob's
// digest and size as it streams (a program that reads blobs itself wraps the stream with
// integrity.VerifiedBlob). A missing blob is reported as ErrBlobNotFound (wrapped),
// a missing image or instance as ErrManifestNotFound (wrapped).
type ImageSource interface {
	Reference() ImageReference
	Properties() SourceProperties
	// GetManifest returns the manifest bytes and MIME type ("" when unknown). With instance
	// nil it returns the top-level manifest (possibly an index); otherwise the manifest with
	// that digest, which must be one the top-level index refers to (directly or nested).
	GetManifest(ctx context.Context, instance *digest.Digest) ([]byte, string, error)
	GetBlob(ctx context.Context, info BlobInfo, opts GetBlobOptions) (io.ReadCloser, int64, error)
	Close() error
}

// LayerCompression says what a destination wants done with layer compression.
type LayerCompression int

const (
	// PreserveOriginal stores layers as they come.
	PreserveOriginal LayerCompression = iota
	// Decompress stores uncompressed layers (e.g. a classic docker-archive).
	Decompress
	// Compress stores compressed layers (a registry): uncompressed Docker-typed layers, which
	// the Docker schema2 registry format does not define, are gzip-compressed. Uncompressed OCI
	// layers are valid as they are and kept, so their digests survive.
	Compress
)

// DestinationProperties are facts about an ImageDestination that stay fixed while it is open.
type DestinationProperties struct {
	// SupportedManifestMIMETypes lists the manifest types the destination can store, best
	// first; nil means any type, so copies never need to convert.
	SupportedManifestMIMETypes []string
	// AcceptsIndex is true when the destination can store a multi-platform index together
	// with its instances.
	AcceptsIndex bool
	// PrefersSinglePlatform is true when, unless told otherwise, a multi-platform source
	// should be reduced to the running platform's image (as `docker save` does).
	PrefersSinglePlatform bool
	// DesiredLayerCompression says whether layers must be decompressed or compressed.
	DesiredLayerCompression LayerCompression
	// AcceptsForeignLayerURLs is true when foreign layers (with URLs) may be stored by reference.
	AcceptsForeignLayerURLs bool
	// UnusableManifestMIMETypes lists manifest types the destination would store byte for
	// byte but that no reader of it can use (a schema1 manifest in an OCI layout has no
	// config, so OCI tools see no image there). The copy treats them as unsupported and
	// converts; with PreserveDigests it fails, saying why.
	UnusableManifestMIMETypes []string
	// ConcurrentBlobs is true when TryReusingBlob and PutBlob may be called concurrently.
	ConcurrentBlobs bool
	// OnlyContainerImages is true when the destination can hold nothing but container images
	// (a docker-archive, for `docker load`): a copy refuses an artifact as the top-level image
	// before it transfers any blob, with an error matching ErrNotContainerImage.
	OnlyContainerImages bool
	// ConcurrentManifests is true when PutManifest may be called from several goroutines at
	// once (instances of an index that finish together) and while the source reads manifests.
	ConcurrentManifests bool
}

// ReuseOptions are the optional arguments of ImageDestination.TryReusingBlob.
type ReuseOptions struct {
	Cache BlobInfoCache // may be nil
	// CanSubstitute allows reusing a blob with different bytes for the same content
	// (another compression), which changes the layer digest in the written manifest.
	CanSubstitute bool
	// SourceReference is the image being copied, so that the destination can look for the
	// blob in a sibling repository (cross-repository mount). May be nil.
	SourceReference ImageReference
	// RequiredCompression, when not "", is the compressor name (UncompressedCompressorName,
	// GzipCompressorName, ZstdCompressorName) every reused blob must have: the requested blob
	// only when OriginalCompression says so, a substitute only when the cache records that
	// compressor for it. See AcceptsCompression.
	RequiredCompression string
	// OriginalCompression is the compressor name of the requested blob; "" when unknown.
	OriginalCompression string
}

// ReusedBlob is the result of a successful TryReusingBlob.
type ReusedBlob struct {
	// Info describes the blob as the destination holds it (it differs from the request only
	// when CanSubstitute allowed a substitution).
	Info BlobInfo
	// MountedFrom names where the blob was mounted or copied from inside the destination's
	// storage (e.g. another repository); empty when it was already present.
	MountedFrom string
	// Kept is true when an earlier, interrupted copy into this destination had staged the
	// blob (verified) and this one takes it over instead of copying it (see ResumeOptions).
	Kept bool
}

// PutBlobOptions are the optional arguments of ImageDestination.PutBlob.
type PutBlobOptions struct {
	Cache BlobInfoCache // may be nil
	// IsConfig is true for the image config blob.
	IsConfig bool
	// LayerIndex is the position of the layer in the manifest, or -1 for configs.
	LayerIndex int
	// Verified is set by a caller (the copy engine) that checks the stream against info.Digest
	// and info.Size as it reads and fails the read at EOF on a mismatch. With info.Digest set,
	// the destination need not hash the stream again: a mismatch still aborts the PutBlob
	// before anything becomes visible. Destinations must still count bytes.
	Verified bool
	// NoResume makes the destination discard, rather than continue, what an earlier run left of
	// this blob's transfer (an upload session, a staged blob); see ErrResumeFailed.
	NoResume bool
	// Resumed, when set, is called at most once by a destination that continues what an earlier
	// run left of this blob's transfer, with the number of bytes it already holds. It still
	// reads those bytes from the stream (so that they are verified) but does not store or send
	// them again.
	Resumed func(n int64)
	// Attempt is how many earlier PutBlob calls for this blob in this copy ended in a
	// StreamRetryError (0 for the first call).
	Attempt int
}

// FileBlob is implemented by the stream PutBlob is given when the blob is a local file copied
// unchanged (a blob of an OCI layout or a dir: going to a registry). A destination that can
// send a file without reading it into memory (sendfile(2)) may take the file instead of
// reading the stream; the stream is then read and verified on the side, as the file goes out.
type FileBlob interface {
	// TakeFile hands the file over, positioned at the blob's first byte, with the blob's size
	// (the file may hold more or fewer bytes: the verification says so). ok is false when the
	// stream was read or taken already; the destination then reads the stream. A destination
	// that took the file sends size bytes from the file's current offset and must not read
	// the stream. Before it makes the blob visible it calls verified, which waits until every
	// byte of the file was read and checked against the blob's digest and size, and returns
	// what the stream's reader would have failed with (ErrDigestMismatch naming both digests,
	// a read error, a cancelled context); on an error the blob must not become visible.
	TakeFile() (f *os.File, size int64, verified func() error, ok bool)
}

// CommitOptions are the optional arguments of ImageDestination.Commit.
type CommitOptions struct {
	// SourceReference is the image that was copied; a destination without a name of its own
	// may take the name from it (e.g. the RepoTags of a docker-archive). May be nil.
	SourceReference ImageReference
	// Platform is the platform the caller chose (the first of copy.Options.Platforms), for a
	// destination that stores a multi-platform index but lists one of its images for
	// single-image loaders (the manifest.json of a docker-archive). nil means the running
	// platform (with the SystemContext's overrides).
	Platform *Platform
}

// ImageDestination writes one image (and, for an index, its instances). The call order is
// described in the package documentation.
//
// PutBlob reads r to EOF, and not after it returned (net/http may read a request body after
// the response arrived: stop that, as the docker transport does). info.Size may be -1 (unknown) and info.Digest may be empty; the
// destination hashes what it writes and, when a digest was given, checks it (and the size,
// when known) before the blob becomes visible, returning ErrDigestMismatch (wrapped) on a
// mismatch. A PutBlob that fails for any reason, including a failing stream or a cancelled
// context, leaves nothing under the blob's final name. It returns the blob as stored.
//
// TryReusingBlob reports whether the destination already has the blob (or can get it without
// a transfer, e.g. by a cross-repository mount); an error means the reuse check itself failed
// in a way the copy should not ignore.
//
// PutManifest stores a manifest: with instance nil the top-level one, otherwise the instance
// with that digest. It returns ManifestTypeRejectedError when this destination refuses the
// MIME type but might accept a different one.
type ImageDestination interface {
	Reference() ImageReference
	Properties() DestinationProperties
	TryReusingBlob(ctx context.Context, info BlobInfo, opts ReuseOptions) (ReusedBlob, bool, error)
	PutBlob(ctx context.Context, r io.Reader, info BlobInfo, opts PutBlobOptions) (BlobInfo, error)
	PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error
	Commit(ctx context.Context, opts CommitOptions) error
	Close() error
}

// ManifestChecker is implemented by destinations that can tell cheaply whether they already
// store an image, so that a warm re-copy skips every blob (as crane and regctl do).
//
// HasManifest returns true only when the destination already stores a manifest with exactly
// digest d together with everything it references: its config and layers and, for an index,
// all its instances (recursively) and their blobs. A copy that would write the source's bytes
// unchanged may then skip every blob and instance manifest and only call PutManifest for the
// top-level manifest (instance nil) and Commit, to (re)name it. It returns false when the
// manifest is missing; an error means "unknown", and the copy goes on as if it were false.
// The copy calls it at most once per destination, before any blob (see the package
// documentation for the call order).
type ManifestChecker interface {
	HasManifest(ctx context.Context, d digest.Digest) (bool, error)
}

// ManifestNamer is implemented by destinations that write the top-level manifest in
// PutManifest and write it again under its name in Commit (a registry: a PUT by digest, then
// one by tag, so that the tag moves only after the referrers and digest tags written between
// the two). A copy that writes nothing between the top-level manifest and Commit calls
// NameOnPut once, before any PutManifest: the top-level manifest may then be written under its
// name at once (one PUT by tag), as it is the last thing before Commit. It still becomes
// visible only after every blob and instance, and Commit still follows.
type ManifestNamer interface {
	NameOnPut()
}

// Platform is an OCI platform (os, architecture, variant, os.version, os.features).
type Platform = imgspecv1.Platform
