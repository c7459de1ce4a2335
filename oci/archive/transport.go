package archive

import (
	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/oci/layout"
	"github.com/imgcopy/imgcopy/types"
)

// Transport is the "oci-archive" transport.
var Transport types.ImageTransport = archiveTransport{}

type archiveTransport struct{}

// Name implements types.ImageTransport.
func (archiveTransport) Name() string { return "oci-archive" }

// ParseReference implements types.ImageTransport: PATH, PATH:NAME or PATH@DIGEST, as for oci:.
func (archiveTransport) ParseReference(ref string) (types.ImageReference, error) {
	path, name, d, err := layout.SplitReference(ref)
	if err != nil {
		return nil, err
	}
	return reference{path: path, name: name, digest: d}, nil
}

// NewReference returns a reference to the image called name (a bare tag or a full reference,
// "" for the archive's only image) in the archive at path. It does not touch the disk.
func NewReference(path, name string) (types.ImageReference, error) {
	ref := path
	if name != "" {
		ref += ":" + name
	}
	r, err := Transport.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if r.(reference).path != path {
		return nil, errNoColon(path)
	}
	return r, nil
}

// NewDigestReference returns a reference to the image whose manifest digest is d in the
// archive at path. Such a reference can be read, not written.
func NewDigestReference(path string, d digest.Digest) (types.ImageReference, error) {
	r, err := Transport.ParseReference(path + "@" + d.String())
	if err != nil {
		return nil, err
	}
	if r.(reference).path != path {
		return nil, errNoColon(path)
	}
	return r, nil
}
