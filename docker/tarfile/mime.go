package tarfile

import (
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
)

// isManifestType reports whether mt is a single-image manifest type an archive can hold.
func isManifestType(mt string) bool {
	return mt == manifest.DockerV2Schema2MediaType || mt == imgspecv1.MediaTypeImageManifest
}

// blobMIMEType returns the declared type of a manifest or index blob, or its guessed one.
func blobMIMEType(declared string, b []byte) string {
	if declared != "" {
		return declared
	}
	return manifest.GuessMIMEType(b)
}
