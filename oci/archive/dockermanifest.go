package archive

import (
	"encoding/json"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"

	"github.com/imgcopy/imgcopy/internal/iolimits"
)

// The members a docker archive adds to an OCI layout in the same tar (Docker 25+'s docker
// save, imgcopy's docker-archive:): docker load reads manifest.json.
const (
	dockerManifestFile = "manifest.json"
	dockerReposFile    = "repositories"
)

// keepDockerManifest carries the manifest.json of a docker archive that also holds an OCI
// layout (the archive written at PATH before) into the new archive, so that writing an image
// through oci-archive: does not leave docker load unable to read the images that were there:
// every entry whose config and layers are all still in the archive is kept as it was, the
// others (an image replaced or dropped) are left out. repositories (the legacy tag map) is
// kept only when every entry is.
func (s *session) keepDockerManifest(cur *openedArchive) error {
	b, ok, err := cur.smallFile(dockerManifestFile)
	if err != nil || !ok {
		return err
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(b, &entries); err != nil {
		logrus.WithFields(logrus.Fields{"archive": s.path, "error": err}).Warnf("dropping the archive's unreadable %s", dockerManifestFile)
		return nil
	}
	kept := make([]json.RawMessage, 0, len(entries))
	for _, e := range entries {
		var item struct {
			Config string
			Layers []string
		}
		if json.Unmarshal(e, &item) == nil && s.holdsMembers(append([]string{item.Config}, item.Layers...)) {
			kept = append(kept, e)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	out, err := json.Marshal(kept)
	if err != nil {
		return err
	}
	if err := s.store.AddFile(dockerManifestFile, out); err != nil {
		return err
	}
	if len(kept) < len(entries) {
		return nil
	}
	repos, ok, err := cur.smallFile(dockerReposFile)
	if err != nil || !ok {
		return err
	}
	return s.store.AddFile(dockerReposFile, repos)
}

// holdsMembers reports whether every member is a blob (blobs/<alg>/<hex>) the new archive
// holds under that name.
func (s *session) holdsMembers(members []string) bool {
	for _, m := range members {
		alg, encoded, ok := strings.Cut(strings.TrimPrefix(m, "blobs/"), "/")
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), encoded)
		if !ok || !strings.HasPrefix(m, "blobs/") || d.Validate() != nil {
			return false
		}
		if b, ok := s.store.Blob(d); !ok || b.Member != m {
			return false
		}
	}
	return true
}

// smallFile reads a metadata member of the archive (at most iolimits.MaxIndexFileSize);
// ok is false when there is none.
func (a *openedArchive) smallFile(name string) (_ []byte, ok bool, _ error) {
	if _, err := a.ix.Lookup(name); err != nil {
		return nil, false, nil
	}
	sr, err := a.ix.Open(name)
	if err != nil {
		return nil, false, errors.Wrapf(err, "reading %s", name)
	}
	b, err := iolimits.ReadAtMost(sr, iolimits.MaxIndexFileSize)
	if err != nil {
		return nil, false, errors.Wrapf(err, "reading %s", name)
	}
	return b, true, nil
}
