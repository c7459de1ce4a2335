package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// TestSignedSchema1Verifies stores a libtrust-signed schema1 manifest in each local transport
// that keeps schema1 (docker-archive does not; docker/tarfile tests its reader) and reads it
// back by its registry digest, which is over the signed payload, not over the stored bytes.
// Every transport checks a manifest against its digest with manifest.CheckDigest, the rule
// registries and the copy engine use, so the signed manifest verifies wherever it is stored.
func TestSignedSchema1Verifies(t *testing.T) {
	t.Parallel()
	signed, err := os.ReadFile("../manifest/testdata/schema1-signed.json")
	if err != nil {
		t.Fatal(err)
	}
	dg, err := manifest.Digest(signed)
	if err != nil || dg == digest.FromBytes(signed) {
		t.Fatalf("fixture: registry digest %s (%v) must differ from the digest of the bytes", dg, err)
	}
	layer := make([]byte, 1024) // the fixture's only layer, an empty tar
	list := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}`,
		manifest.DockerV2ListMediaType, manifest.DockerV2Schema1SignedMediaType, dg, len(signed)))
	cases := []struct {
		kind     string
		instance bool // stored as the instance of a manifest list, else as the top level
	}{
		{kind: "dir", instance: true},
		{kind: "oci", instance: true},
		{kind: "oci", instance: false},
		{kind: "oci-archive", instance: true},
		{kind: "oci-archive", instance: false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/instance=%v", tc.kind, tc.instance), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ref := e2eLocation(t, tc.kind, t.TempDir(), "", "schema1")
			dest, err := ref.NewImageDestination(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			if _, err := dest.PutBlob(ctx, bytes.NewReader(layer), types.BlobInfo{Digest: digest.FromBytes(layer), Size: int64(len(layer))}, types.PutBlobOptions{}); err != nil {
				t.Fatal(err)
			}
			if tc.instance {
				if err := dest.PutManifest(ctx, signed, manifest.DockerV2Schema1SignedMediaType, &dg); err != nil {
					t.Fatalf("storing the schema1 instance: %v", err)
				}
				if err := dest.PutManifest(ctx, list, manifest.DockerV2ListMediaType, nil); err != nil {
					t.Fatal(err)
				}
			} else if err := dest.PutManifest(ctx, signed, manifest.DockerV2Schema1SignedMediaType, nil); err != nil {
				t.Fatal(err)
			}
			if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
				t.Fatal(err)
			}
			src, err := ref.NewImageSource(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			got, _, err := src.GetManifest(ctx, &dg)
			if err != nil {
				t.Fatalf("reading the schema1 manifest by its registry digest: %v", err)
			}
			if !bytes.Equal(got, signed) {
				t.Error("the schema1 manifest did not come back byte for byte")
			}
		})
	}
}
