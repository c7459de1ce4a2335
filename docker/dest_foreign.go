package docker

import (
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/manifest"
)

// codeManifestBlobUnknown is the code of a manifest push that references a blob the
// repository does not have (distribution-spec "Error Codes").
const codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"

// explainForeignRefusal explains the refusal of a manifest whose foreign (non-distributable)
// layers a copy kept as references, unpushed, as Docker does: registries that do not allow
// their URLs answer that the layer is unknown (CNCF distribution, unless its
// validation.manifests.urls.allow lets the URLs in, answers 500 with "invalid URL on layer"
// in its log and MANIFEST_BLOB_UNKNOWN for the layer). err is returned as it is when it is
// something else.
func explainForeignRefusal(err error, body []byte, mimeType string) error {
	re, ok := asRegistryError(err)
	if !ok {
		return err
	}
	m, perr := manifest.FromBlob(body, mimeType)
	if perr != nil {
		return err
	}
	var refused []string
	for _, l := range m.LayerInfos() {
		if len(l.URLs) > 0 && re.namesUnknownBlob(l.Digest) {
			refused = append(refused, l.Digest.String())
		}
	}
	if len(refused) == 0 {
		return err
	}
	return errors.Wrapf(err, "the registry refused foreign layer %s, kept as a reference to its URLs (the registry may not allow them; CNCF distribution needs validation.manifests.urls.allow); --include-non-distributable stores foreign layers in the registry instead",
		strings.Join(refused, ", "))
}

// namesUnknownBlob reports whether the registry said that blob d, referenced by a manifest,
// is unknown.
func (e *registryError) namesUnknownBlob(d digest.Digest) bool {
	for _, det := range e.details {
		if (det.Code == codeManifestBlobUnknown || det.Code == codeBlobUnknown) && strings.Contains(string(det.Detail), d.String()) {
			return true
		}
	}
	return false
}
