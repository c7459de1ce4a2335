package archive

import (
	"context"

	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/oci/layout"
)

// TestKeepsDockerManifest writes an image through oci-archive: into a tar that is also a
// docker archive (an OCI layout with manifest.json, as Docker 25+ and docker-archive: write
// it): the manifest.json entries whose blobs stay are kept byte for byte, so docker load still
// reads them; an entry whose blobs are gone is left out, and repositories with it.
func TestKeepsDockerManifest(t *testing.T) {
	t.Parallel()
	a, b := testImage(t, "amd64"), testImage(t, "arm64")
	blobMember := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	entry := func(config digest.Digest, layers ...digest.Digest) json.RawMessage {
		item := map[string]any{"Config": blobMember(config), "RepoTags": []string{"app:1"}, "Layers": []string{}}
		for _, l := range layers {
			item["Layers"] = append(item["Layers"].([]string), blobMember(l))
		}
		raw, _ := json.Marshal(item)
		return raw
	}
	entryA := entry(a.Config.Digest, a.Layers[0].Digest)
	gone := entry(digest.FromString("gone"), a.Layers[0].Digest)
	repos := []byte(`{"app":{"1":"x"}}`)
	cases := []struct {
		name      string
		entries   []json.RawMessage
		want      []json.RawMessage // nil: no manifest.json
		wantRepos bool
	}{
		{"every entry's blobs stay", []json.RawMessage{entryA}, []json.RawMessage{entryA}, true},
		{"an entry's blobs are gone", []json.RawMessage{entryA, gone}, []json.RawMessage{entryA}, false},
		{"no entry's blobs stay", []json.RawMessage{gone}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			layoutDir := filepath.Join(dir, "layout")
			lref, err := layout.NewReference(layoutDir, "app:1")
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, lref, a)
			mj, _ := json.Marshal(tc.entries)
			if err := os.WriteFile(filepath.Join(layoutDir, dockerManifestFile), mj, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(layoutDir, dockerReposFile), repos, 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "dual.tar")
			writeTarOfDir(t, layoutDir, path, a.Config.Digest)

			mustWrite(t, mustRef(t, path, "other"), b)

			checkReadable(t, mustRef(t, path, "other"), b)
			checkReadable(t, mustRef(t, path, "app:1"), a)
			cur, err := openArchive(context.Background(), path, "")
			if err != nil {
				t.Fatal(err)
			}
			defer cur.Close()
			got, ok, err := cur.smallFile(dockerManifestFile)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := json.Marshal(tc.want); ok != (tc.want != nil) || (ok && !bytes.Equal(got, want)) {
				t.Errorf("manifest.json %q (present %v), want %q", got, ok, want)
			}
			gotRepos, ok, _ := cur.smallFile(dockerReposFile)
			if ok != tc.wantRepos || (ok && !bytes.Equal(gotRepos, repos)) {
				t.Errorf("repositories %q (present %v), want present %v", gotRepos, ok, tc.wantRepos)
			}
		})
	}
}
