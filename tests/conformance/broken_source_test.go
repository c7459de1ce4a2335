package conformance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/dir"
	"github.com/imgcopy/imgcopy/types"
)

// RunSource must reject a broken read-only transport too: the same child-process scheme as
// TestSuiteRejectsBrokenTransports, with the dir wrapper made read-only.

// sourceFaults maps each fault to the subtest of RunSource that must catch it.
var sourceFaults = []fault{
	{"untyped-not-found", "MissingBlob", "reports a missing blob without ErrBlobNotFound"},
	{"writable", "NoDestination", "opens a destination although it cannot write"},
	{"unparsable-reference", "ReferenceRoundTrip", "cannot parse its own references"},
}

func TestRunSourceRejectsBrokenTransports(t *testing.T) {
	checkRejects(t, "TestBrokenSource", sourceFaults)
}

// TestBrokenSource runs RunSource against the read-only wrapper with the fault its parent
// names; without one, every subtest must pass.
func TestBrokenSource(t *testing.T) {
	fault, ok := os.LookupEnv(brokenEnv)
	if !ok {
		t.Skip("run by TestRunSourceRejectsBrokenTransports")
	}
	tr := &brokenTransport{fault: fault, readOnly: fault != "writable"}
	RunSource(t, SourceHarness{
		Serve: func(t *testing.T, img Stored) types.ImageReference {
			path := filepath.Join(t.TempDir(), "img")
			storeInDir(t, path, img)
			ref, err := tr.ParseReference(path)
			if err != nil {
				t.Fatal(err)
			}
			return ref
		},
		Missing: func(t *testing.T) types.ImageReference {
			ref, err := tr.ParseReference(filepath.Join(t.TempDir(), "none"))
			if err != nil {
				t.Fatal(err)
			}
			return ref
		},
	})
}

// storeInDir writes img into a dir: image at path, outside the transport under test, as a
// read-only transport's test stores its images.
func storeInDir(t *testing.T, path string, img Stored) {
	t.Helper()
	ctx := context.Background()
	ref, err := dir.NewReference(path)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := ref.NewImageDestination(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	for _, b := range img.Blobs {
		info := types.BlobInfo{Digest: b.Digest, Size: int64(len(b.Data)), MediaType: b.MediaType}
		if _, err := dest.PutBlob(ctx, bytes.NewReader(b.Data), info, types.PutBlobOptions{LayerIndex: -1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range img.Instances {
		if err := dest.PutManifest(ctx, m.Data, m.MediaType, &m.Digest); err != nil {
			t.Fatal(err)
		}
	}
	if err := dest.PutManifest(ctx, img.Manifest.Data, img.Manifest.MediaType, nil); err != nil {
		t.Fatal(err)
	}
	if err := dest.Commit(ctx, types.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
}

// errReadOnly is what the read-only wrapper's NewImageDestination returns.
var errReadOnly = types.UsageError{Err: errors.New("broken-dir: is read-only")}
