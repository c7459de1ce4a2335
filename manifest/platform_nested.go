package manifest

import (
	"context"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// ManifestFetcher reads the manifest an index entry names: its bytes and MIME type.
type ManifestFetcher func(ctx context.Context, d digest.Digest) ([]byte, string, error)

// MaxIndexDepth bounds how deep readers descend through indexes listing indexes.
const MaxIndexDepth = 8

// ResolvedInstance is the image manifest ResolveInstance found.
type ResolvedInstance struct {
	IndexInstance
	Manifest []byte
	MIMEType string
}

// ResolveInstance returns the image for want in idx like ChooseInstance, and when idx lists
// no such image itself, looks into the nested indexes it lists (those whose entry names no
// platform or a matching one), in order and depth first, as containerd does. The image's
// manifest is read with fetch; nested indexes are checked against their digest. The error,
// wrapping types.ErrManifestNotFound, lists the platforms available at every level.
func ResolveInstance(ctx context.Context, idx Index, want types.Platform, fetch ManifestFetcher) (ResolvedInstance, error) {
	var seen []IndexInstance
	r, ok, err := resolveIn(ctx, idx, want, fetch, 0, &seen)
	if err != nil || ok {
		return r, err
	}
	return ResolvedInstance{}, errors.Wrapf(types.ErrManifestNotFound, "no image for platform %s in the index; available: %s",
		FormatPlatform(want), availablePlatforms(seen))
}

// resolveIn is ResolveInstance at one level; seen collects every entry looked at.
func resolveIn(ctx context.Context, idx Index, want types.Platform, fetch ManifestFetcher, depth int, seen *[]IndexInstance) (ResolvedInstance, bool, error) {
	instances := idx.Instances()
	*seen = append(*seen, instances...)
	if inst, err := ChooseInstance(idx, want); err == nil {
		b, mt, err := fetch(ctx, inst.Digest)
		if err != nil {
			return ResolvedInstance{}, false, err
		}
		if mt == "" {
			mt = inst.MediaType
		}
		return ResolvedInstance{IndexInstance: inst, Manifest: b, MIMEType: mt}, true, nil
	}
	for _, inst := range instances {
		if !IsIndexType(inst.MediaType) || (inst.Platform != nil && !MatchesPlatform(want, *inst.Platform)) {
			continue
		}
		if depth >= MaxIndexDepth {
			return ResolvedInstance{}, false, errors.Wrapf(ErrInvalidManifest, "indexes nested more than %d deep", MaxIndexDepth)
		}
		b, mt, err := fetch(ctx, inst.Digest)
		if err != nil {
			return ResolvedInstance{}, false, err
		}
		if err := CheckDigest(b, inst.Digest, inst.Size); err != nil {
			return ResolvedInstance{}, false, errors.Wrapf(err, "reading nested index %s", inst.Digest)
		}
		if mt == "" {
			mt = inst.MediaType
		}
		nested, err := IndexFromBlob(b, mt)
		if err != nil {
			return ResolvedInstance{}, false, errors.Wrapf(err, "parsing nested index %s", inst.Digest)
		}
		if r, ok, err := resolveIn(ctx, nested, want, fetch, depth+1, seen); ok || err != nil {
			return r, ok, err
		}
	}
	return ResolvedInstance{}, false, nil
}
