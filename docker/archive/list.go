package archive

import (
	"context"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/docker/tarfile"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

var (
	_ types.ImageLister      = (*reference)(nil)
	_ types.ManifestDigester = (*reference)(nil)
)

// ListImages implements types.ImageLister: for docker-archive:PATH, every image of
// manifest.json in archive order, once per RepoTag (an untagged image once, as PATH:@N);
// for a reference with a name or @N, that image. Digest is known when the archive keeps the
// image's manifest (as imgcopy and Docker 25+ write it) and "" otherwise.
func (r *reference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	rd, err := tarfile.NewReader(ctx, r.path, sys)
	if err != nil {
		return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
	}
	defer rd.Close()
	if r.named != nil || r.index >= 0 {
		pos, err := rd.Choose(r.named, r.index)
		if err != nil {
			return nil, errors.Wrapf(err, "listing images in %s", types.ImageName(r))
		}
		sum := rd.Summarize(pos)
		img := types.ListedImage{Ref: r, Digest: sum.Digest, MIMEType: sum.MIMEType}
		if r.named != nil {
			img.Name, img.StoredName = r.named, tarfile.NameTag(r.named)
		} else if len(sum.RepoTags) > 0 {
			img.Name, img.StoredName = sum.RepoTags[0], tarfile.NameTag(sum.RepoTags[0])
		}
		return []types.ListedImage{img}, nil
	}
	res := []types.ListedImage{}
	for pos := range rd.Items() {
		res = append(res, listed(rd, r.path, rd.Summarize(pos))...)
	}
	return res, nil
}

// listed returns the entries of one image: one per RepoTag, referenced by the tag unless
// another image carries it too.
func listed(rd *tarfile.Reader, path string, sum tarfile.ImageSummary) []types.ListedImage {
	byPos := &reference{path: path, index: sum.Pos}
	if len(sum.RepoTags) == 0 {
		return []types.ListedImage{{Ref: byPos, Digest: sum.Digest, MIMEType: sum.MIMEType}}
	}
	var res []types.ListedImage
	for _, nt := range sum.RepoTags {
		var ref types.ImageReference = byPos
		if pos, err := rd.Choose(nt, -1); err == nil && pos == sum.Pos {
			ref = &reference{path: path, named: nt, index: -1}
		}
		res = append(res, types.ListedImage{Ref: ref, Name: nt, StoredName: tarfile.NameTag(nt), Digest: sum.Digest, MIMEType: sum.MIMEType})
	}
	return res
}

// ManifestDigest implements types.ManifestDigester. For an image whose manifest the archive
// does not keep, the manifest is synthesized (which hashes compressed layers).
func (r *reference) ManifestDigest(ctx context.Context, sys *types.SystemContext) (digest.Digest, error) {
	src, err := r.NewImageSource(ctx, sys)
	if err != nil {
		return "", err
	}
	defer src.Close()
	b, _, err := src.GetManifest(ctx, nil)
	if err != nil {
		return "", errors.Wrapf(err, "reading the digest of %s", types.ImageName(r))
	}
	return manifest.Digest(b)
}
