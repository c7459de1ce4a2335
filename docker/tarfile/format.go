package tarfile

import (
	"encoding/json"

	"github.com/distribution/reference"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/tarindex"
	"github.com/imgcopy/imgcopy/types"
)

// Names of the metadata members of a `docker save` archive.
const (
	manifestFileName     = "manifest.json"
	repositoriesFileName = "repositories"
	ociLayoutFileName    = "oci-layout"
	ociIndexFileName     = "index.json"
	legacyLayerFileName  = "layer.tar"
	legacyConfigFileName = "json"
	legacyVersionFile    = "VERSION"
)

// Annotations written on index.json entries: the OCI one (a full name:tag, as the brief asks)
// and the one containerd and Docker 25+ use to name images on `docker load`.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerName = "io.containerd.image.name"
)

// ErrInvalidArchive is types.ErrInvalidArchive, returned (wrapped, with detail) when an
// archive is not a usable `docker save` archive: bad manifest.json, members it names are
// missing, layers do not match the config.
var ErrInvalidArchive = types.ErrInvalidArchive

// ManifestItem is one entry of manifest.json.
type ManifestItem struct {
	Config       string                     `json:"Config"`
	RepoTags     []string                   `json:"RepoTags"`
	Layers       []string                   `json:"Layers"`
	Parent       string                     `json:"Parent,omitempty"`
	LayerSources map[string]json.RawMessage `json:"LayerSources,omitempty"`
}

// ParseManifestJSON parses and checks the manifest.json of an archive: a non-empty array of
// items, each naming a config and layers by safe relative paths, with valid tagged RepoTags.
func ParseManifestJSON(b []byte) ([]ManifestItem, error) {
	if len(b) > iolimits.MaxIndexFileSize {
		return nil, errors.Wrapf(iolimits.ErrTooLarge, "%s is %d bytes", manifestFileName, len(b))
	}
	var items []ManifestItem
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, errors.Wrapf(ErrInvalidArchive, "parsing %s: %v", manifestFileName, err)
	}
	if len(items) == 0 {
		return nil, errors.Wrapf(ErrInvalidArchive, "%s lists no images", manifestFileName)
	}
	for i := range items {
		if err := checkManifestItem(&items[i]); err != nil {
			return nil, errors.Wrapf(err, "%s entry %d", manifestFileName, i)
		}
	}
	return items, nil
}

func checkManifestItem(it *ManifestItem) error {
	if it.Config == "" {
		return errors.Wrap(ErrInvalidArchive, "no Config")
	}
	cfg, err := tarindex.Clean(it.Config)
	if err != nil {
		return errors.Wrap(err, "Config")
	}
	for _, l := range it.Layers {
		lc, err := tarindex.Clean(l)
		if err != nil {
			return errors.Wrap(err, "layer")
		}
		if lc == cfg {
			return errors.Wrapf(ErrInvalidArchive, "%q is named both as config and as a layer", l)
		}
	}
	for _, t := range it.RepoTags {
		if _, err := parseRepoTag(t); err != nil {
			return err
		}
	}
	return nil
}

// parseRepoTag parses a RepoTags entry ("busybox:latest", "quay.io/x/y:v1") into a normalized
// tagged name.
func parseRepoTag(s string) (reference.NamedTagged, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errors.Wrapf(ErrInvalidArchive, "invalid RepoTag %q: %v", s, err)
	}
	nt, ok := n.(reference.NamedTagged)
	if !ok {
		return nil, errors.Wrapf(ErrInvalidArchive, "RepoTag %q has no tag", s)
	}
	if _, digested := n.(reference.Digested); digested {
		return nil, errors.Wrapf(ErrInvalidArchive, "RepoTag %q contains a digest", s)
	}
	return nt, nil
}

// NameTag renders a tagged name the way we write it into RepoTags and annotations: the full
// normalized form ("docker.io/library/busybox:latest").
func NameTag(n reference.NamedTagged) string {
	return n.Name() + ":" + n.Tag()
}
