package tarfile

import (
	"slices"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/manifest"
)

// ImageSummary describes an image of an archive, for listing.
type ImageSummary struct {
	// Pos is the image's position in manifest.json (its @N).
	Pos int
	// RepoTags are its names, normalized ("docker.io/library/busybox:latest").
	RepoTags []reference.NamedTagged
	// Digest and MIMEType describe the manifest or index the archive's OCI layout part keeps
	// for it; both are "" when the archive has none and a manifest would be synthesized.
	Digest   digest.Digest
	MIMEType string
}

// Summarize describes the image at position pos (see Choose). An image the archive cannot
// serve (a missing config, say) is still described, without a digest: reading it reports the
// problem.
func (r *Reader) Summarize(pos int) ImageSummary {
	sum := ImageSummary{Pos: pos, RepoTags: slices.Clone(r.meta.tags[pos])}
	src, err := NewSource(r, false, nil, pos)
	if err != nil {
		logrus.WithField("image", r.imageName(pos)).Debugf("listing an image the archive cannot serve: %v", err)
		return sum
	}
	if s := src.(*source); s.top != nil {
		if d, err := manifest.Digest(s.top); err == nil {
			sum.Digest, sum.MIMEType = d, s.topType
		}
	}
	return sum
}
