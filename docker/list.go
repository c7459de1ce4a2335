package docker

import (
	"context"
	"sort"

	distref "github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/types"
)

var (
	_ types.ImageLister      = reference{}
	_ types.ManifestDigester = reference{}
)

// ListImages implements types.ImageLister. A reference written without tag or digest
// ("docker://HOST/REPO") lists every tag of the repository, sorted; one with a tag or digest
// lists just that image, with its digest (a HEAD; ErrManifestNotFound when it is missing). Tags the registry returns that are not valid tag names are skipped
// with a warning. StoredName is the full name, HOST/REPO:TAG, as a docker-archive records it.
func (r reference) ListImages(ctx context.Context, sys *types.SystemContext) ([]types.ListedImage, error) {
	if !r.implicitTag {
		d, err := r.ManifestDigest(ctx, sys) // it must exist, as a layout's listing of a name checks
		if err != nil {
			return nil, err
		}
		return []types.ListedImage{{Ref: r, Name: r.named, StoredName: r.named.String(), Digest: d}}, nil
	}
	c, err := r.newClient(sys)
	if err != nil {
		return nil, err
	}
	tags, err := c.listTags(ctx)
	if err != nil {
		return nil, errors.Wrapf(err, "listing tags of %s", c.name())
	}
	return r.taggedImages(tags), nil
}

// taggedImages returns one listed image per distinct valid tag, sorted by tag. Invalid tags
// are skipped with one warning, however many there are.
func (r reference) taggedImages(tags []string) []types.ListedImage {
	sort.Strings(tags)
	repo := distref.TrimNamed(r.named)
	out := make([]types.ListedImage, 0, len(tags))
	invalid, example := 0, ""
	for i, tag := range tags {
		if i > 0 && tag == tags[i-1] {
			continue
		}
		named, err := distref.WithTag(repo, tag)
		if err != nil {
			if invalid++; invalid == 1 {
				example = tag
			}
			continue
		}
		out = append(out, types.ListedImage{Ref: reference{named: named}, Name: named, StoredName: named.String()})
	}
	if invalid > 0 {
		logrus.WithFields(logrus.Fields{"repository": repo.Name(), "count": invalid, "tag": truncate(example)}).Warn("registry listed invalid tags; skipping them")
	}
	return out
}

// ManifestDigest implements types.ManifestDigester with a HEAD of the manifest (sending every
// manifest type we read in Accept, so that the registry does not convert): the digest comes
// from Docker-Content-Digest. A registry that sends none is asked with a GET instead (Docker
// Hub counts that as a pull; it does send the header).
func (r reference) ManifestDigest(ctx context.Context, sys *types.SystemContext) (digest.Digest, error) {
	c, err := r.newClient(sys)
	if err != nil {
		return "", err
	}
	d, err := c.resolveDigest(ctx, r.manifestRef(), []scope{{repo: r.repo(), actions: "pull"}})
	if err != nil {
		return "", errors.Wrapf(err, "resolving the digest of %s", types.ImageName(r))
	}
	if want := r.digest(); want != "" && d != want {
		return "", errors.Errorf("resolving %s: the registry answered with digest %s", types.ImageName(r), d)
	}
	return d, nil
}
