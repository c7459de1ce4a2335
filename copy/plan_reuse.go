package copy

import (
	"slices"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// reusePlanInput is everything the reuse request of one blob depends on.
type reusePlanInput struct {
	Layer           layerPlan // the zero plan for configs
	IsConfig        bool
	PreserveDigests bool
	KeepManifest    bool // the manifest is written byte-exact, so no layer digest may change
}

// planReuse decides which blobs TryReusingBlob may accept in place of one source blob. A
// substitute (other bytes, same content) only when the manifest is rewritten anyway and
// digests may change. And for a layer of known compression, only blobs compressed as the
// plan wants the result (plan.To): a requested --dest-compress-format is honoured even when
// the destination has the source's blob, or could mount it, and a plain copy never swaps a
// layer's compression. Since planLayer asks for zstd only where an OCI manifest can be
// written, no zstd blob is ever reused into a Docker schema2 manifest.
func planReuse(in reusePlanInput) types.ReuseOptions {
	if in.IsConfig {
		return types.ReuseOptions{}
	}
	from, fromKnown := knownCompressorName(in.Layer.From)
	to, toKnown := knownCompressorName(in.Layer.To)
	if !fromKnown || !toKnown {
		return types.ReuseOptions{} // an unknown compression: the exact blob only
	}
	return types.ReuseOptions{
		CanSubstitute:       !in.PreserveDigests && !in.KeepManifest,
		RequiredCompression: to,
		OriginalCompression: from,
	}
}

// knownCompressorName maps a plan compression to its BlobInfoCache name; false for an
// unknown compression.
func knownCompressorName(c string) (string, bool) {
	switch c {
	case compressionNone, compressionGzip, compressionZstd:
		return compressorName(c), true
	}
	return "", false
}

// zstdImpossible reports whether every manifest the plan may write is Docker schema2, which
// has no zstd layer type: schema2 is forced, or the destination takes no OCI manifest.
func zstdImpossible(force string, destSupported []string) bool {
	return force == manifest.DockerV2Schema2MediaType ||
		(destSupported != nil && !slices.Contains(destSupported, imgspecv1.MediaTypeImageManifest))
}

// checkCompressionPossible fails early when zstd is requested for a copy that can only write
// Docker schema2 manifests.
// A destination that must have uncompressed layers wins over a requested compression.
func checkCompressionPossible(compress, force string, dest types.DestinationProperties) error {
	if compress != compressionZstd || dest.DesiredLayerCompression == types.Decompress ||
		!zstdImpossible(force, dest.SupportedManifestMIMETypes) {
		return nil
	}
	if force != "" {
		return errors.Wrapf(types.ErrUsage, "zstd layers need an OCI manifest, but the manifest type is forced to %s", force)
	}
	return errors.Wrap(types.ErrUsage, "zstd layers need an OCI manifest, which the destination cannot store")
}
