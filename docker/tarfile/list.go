package tarfile

import (
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
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

// Summarize describes the image at position pos (see Choose).
func (r *Reader) Summarize(pos int) (ImageSummary, error) {
	src, err := NewSource(r, false, nil, pos)
	if err != nil {
		return ImageSummary{}, err
	}
	s := src.(*source)
	sum := ImageSummary{Pos: pos}
	for _, t := range s.item.RepoTags {
		if nt, err := parseRepoTag(t); err == nil {
			sum.RepoTags = append(sum.RepoTags, nt)
		}
	}
	if s.top != nil {
		sum.Digest, sum.MIMEType = digest.FromBytes(s.top), s.topType
	}
	return sum, nil
}
