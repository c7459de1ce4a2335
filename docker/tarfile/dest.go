package tarfile

import (
	"context"
	"io"
	"slices"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// destination writes one image into a Writer.
type destination struct {
	ref        types.ImageReference
	w          *Writer
	ownsWriter bool
	names      []reference.NamedTagged
	sys        *types.SystemContext

	instances map[digest.Digest][]byte
	top       []byte
	topType   string
	committed bool
}

var _ types.ImageDestination = (*destination)(nil)

// NewDestination returns a destination adding one image, tagged with names, to w. When
// ownsWriter is set, Commit also finishes the archive (Writer.Close) and Close without
// Commit abandons it.
func NewDestination(w *Writer, ownsWriter bool, ref types.ImageReference, names []reference.NamedTagged, sys *types.SystemContext) types.ImageDestination {
	return &destination{ref: ref, w: w, ownsWriter: ownsWriter, names: names, sys: sys, instances: map[digest.Digest][]byte{}}
}

// Reference implements types.ImageDestination.
func (d *destination) Reference() types.ImageReference { return d.ref }

// Properties implements types.ImageDestination. Blobs may be written concurrently, each
// straight into its own region of the tar (see internal/tarstore).
func (d *destination) Properties() types.DestinationProperties {
	if d.w.classic {
		return types.DestinationProperties{
			SupportedManifestMIMETypes: []string{manifest.DockerV2Schema2MediaType},
			PrefersSinglePlatform:      true,
			DesiredLayerCompression:    types.Decompress,
			ConcurrentBlobs:            true,
			OnlyContainerImages:        true,
		}
	}
	return types.DestinationProperties{
		SupportedManifestMIMETypes: []string{manifest.DockerV2Schema2MediaType, imgspecv1.MediaTypeImageManifest, manifest.DockerV2ListMediaType, imgspecv1.MediaTypeImageIndex},
		AcceptsIndex:               true,
		PrefersSinglePlatform:      true,
		DesiredLayerCompression:    types.PreserveOriginal,
		ConcurrentBlobs:            true,
		OnlyContainerImages:        true,
	}
}

// TryReusingBlob implements types.ImageDestination. Blobs already in the archive (from this
// image or an earlier one; one another image's copy is writing right now is waited for) are
// reused; in the classic layout, a compressed layer whose uncompressed form is already stored
// is substituted when allowed. A required compression other than the blob's own rules the
// blob out (and anything but uncompressed, the substitute).
func (d *destination) TryReusingBlob(ctx context.Context, info types.BlobInfo, opts types.ReuseOptions) (types.ReusedBlob, bool, error) {
	if info.Digest == "" {
		return types.ReusedBlob{}, false, nil
	}
	if opts.AcceptsOriginal() {
		if size, ok, err := d.w.WaitBlob(ctx, info.Digest); ok || err != nil {
			info.Size = size
			return types.ReusedBlob{Info: info}, ok, err
		}
		if size, ok := d.w.ReuseFromPrevious(info.Digest); ok {
			info.Size = size
			return types.ReusedBlob{Info: info}, true, nil
		}
		if size, ok := d.w.Salvage(ctx, info); ok {
			info.Size = size
			return types.ReusedBlob{Info: info, Kept: true}, true, nil
		}
	}
	if !d.w.classic || !opts.CanSubstitute || opts.Cache == nil || !opts.AcceptsCompression(types.UncompressedCompressorName) {
		return types.ReusedBlob{}, false, nil
	}
	u := opts.Cache.UncompressedDigest(info.Digest)
	if u == "" {
		return types.ReusedBlob{}, false, nil
	}
	if size, ok := d.w.HasBlob(u); ok {
		mt := manifest.DockerV2SchemaLayerMediaTypeUncompressed
		if info.MediaType == imgspecv1.MediaTypeImageLayerGzip || info.MediaType == imgspecv1.MediaTypeImageLayerZstd || info.MediaType == imgspecv1.MediaTypeImageLayer {
			mt = imgspecv1.MediaTypeImageLayer
		}
		return types.ReusedBlob{Info: types.BlobInfo{Digest: u, Size: size, MediaType: mt}}, true, nil
	}
	return types.ReusedBlob{}, false, nil
}

// KeepsPartialBlob implements types.PartialBlobKeeper (see Writer.KeepsPartialBlob): a
// blob pulled into the archive is written once, not also as a partial download.
func (d *destination) KeepsPartialBlob(info types.BlobInfo) (bool, io.ReadCloser, int64) {
	return d.w.KeepsPartialBlob(info)
}

// PutBlob implements types.ImageDestination. Its errors do not name the archive: copy.Image
// says "writing to" it already.
func (d *destination) PutBlob(ctx context.Context, r io.Reader, info types.BlobInfo, opts types.PutBlobOptions) (types.BlobInfo, error) {
	return d.w.PutBlob(ctx, r, info, opts)
}

// PutManifest implements types.ImageDestination. Instance manifests are stored as blobs at
// once (the archive only becomes visible on Commit); the top-level one is kept for Commit.
func (d *destination) PutManifest(ctx context.Context, body []byte, mimeType string, instance *digest.Digest) error {
	if mimeType == "" {
		mimeType = manifest.GuessMIMEType(body)
	}
	if !slices.Contains(d.Properties().SupportedManifestMIMETypes, mimeType) {
		return types.ManifestTypeRejectedError{MIMEType: mimeType,
			Err: errors.Errorf("%s stores only %v", types.ImageName(d.ref), d.Properties().SupportedManifestMIMETypes)}
	}
	if instance == nil {
		if !manifest.IsIndexType(mimeType) {
			if err := checkLoadable(body, mimeType); err != nil {
				return errors.Wrapf(err, "writing %s", types.ImageName(d.ref))
			}
		}
		d.top, d.topType = body, mimeType
		return nil
	}
	if err := manifest.CheckDigest(body, *instance, -1); err != nil {
		return errors.Wrapf(err, "writing manifest to %s", types.ImageName(d.ref))
	}
	if err := d.w.PutManifestBlob(body); err != nil {
		return errors.Wrapf(err, "writing manifest %s to %s", *instance, types.ImageName(d.ref))
	}
	d.instances[*instance] = body
	return nil
}

// Commit implements types.ImageDestination. For an index, manifest.json lists the running
// platform's image (so that `docker load` works) while index.json names the whole index.
func (d *destination) Commit(ctx context.Context, opts types.CommitOptions) error {
	if d.top == nil {
		return errors.Errorf("committing %s: no manifest was written", types.ImageName(d.ref))
	}
	img := Image{Manifest: d.top, Top: d.top, TopType: d.topType, Names: d.names}
	if len(img.Names) == 0 && opts.SourceReference != nil {
		if nt, ok := opts.SourceReference.DockerReference().(reference.NamedTagged); ok {
			img.Names = []reference.NamedTagged{nt}
		}
	}
	if manifest.IsIndexType(d.topType) {
		m, err := d.chooseInstance(ctx, opts.Platform)
		if err != nil {
			return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
		}
		img.Manifest = m
	}
	if err := d.w.AddImage(img); err != nil {
		return errors.Wrapf(err, "committing %s", types.ImageName(d.ref))
	}
	if d.ownsWriter {
		if err := d.w.Commit(ctx); err != nil {
			return err
		}
	}
	d.committed = true
	return nil
}

// checkLoadable refuses, as a usage error, a manifest that is not a container image: a
// docker-archive is for `docker load`, which cannot load an artifact (a Helm chart, a
// signature), so such an archive would only fail later and elsewhere.
func checkLoadable(body []byte, mimeType string) error {
	m, err := manifest.FromBlob(body, mimeType)
	if err != nil {
		return err
	}
	return manifest.RefuseArtifact(m, "a docker-archive")
}

// chooseInstance picks, among the written instances of the index and of its nested indexes,
// the one for platform (nil: the running one), else the first written container image (never
// an attestation).
func (d *destination) chooseInstance(ctx context.Context, platform *types.Platform) ([]byte, error) {
	idx, err := manifest.IndexFromBlob(d.top, d.topType)
	if err != nil {
		return nil, err
	}
	want := manifest.SystemPlatform(d.sys)
	if platform != nil {
		want = *platform
	}
	written := func(_ context.Context, dg digest.Digest) ([]byte, string, error) {
		if b, ok := d.instances[dg]; ok {
			return b, "", nil
		}
		return nil, "", errors.Wrapf(types.ErrManifestNotFound, "manifest %s was not written", dg)
	}
	if inst, err := manifest.ResolveInstance(ctx, idx, want, written); err == nil {
		return inst.Manifest, nil
	}
	if b, inst, ok := d.firstImage(idx, 0); ok {
		logrus.WithFields(logrus.Fields{"platform": manifest.FormatPlatform(want), "digest": inst}).
			Warn("no image for the chosen platform was written; manifest.json lists another instance")
		return b, nil
	}
	return nil, types.UsageError{Err: errors.New("no container image of the index was written (a docker-archive holds only container images)")}
}

// firstImage returns the first written container image of idx (never an attestation), looking
// into the written nested indexes too.
func (d *destination) firstImage(idx manifest.Index, depth int) ([]byte, digest.Digest, bool) {
	for _, inst := range idx.Instances() {
		b, ok := d.instances[inst.Digest]
		switch {
		case !ok:
		case manifest.IsIndexType(inst.MediaType) && depth < manifest.MaxIndexDepth:
			if nested, err := manifest.IndexFromBlob(b, inst.MediaType); err == nil {
				if b, dg, ok := d.firstImage(nested, depth+1); ok {
					return b, dg, true
				}
			}
		case manifest.Runnable(inst) && checkLoadable(b, inst.MediaType) == nil:
			return b, inst.Digest, true
		}
	}
	return nil, "", false
}

// Close implements types.ImageDestination.
func (d *destination) Close() error {
	if d.ownsWriter && !d.committed {
		d.w.Abort()
	}
	return nil
}
