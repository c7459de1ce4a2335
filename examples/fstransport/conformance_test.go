package fstransport_test

import (
	"path"
	"testing"
	"testing/fstest"

	"github.com/imgcopy/imgcopy/examples/fstransport"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/types"
)

// TestConformance runs the suite for read-only transports: the suite cannot write through
// the transport, so Serve puts each test image into a file system and serves that.
func TestConformance(t *testing.T) {
	conformance.RunSource(t, conformance.SourceHarness{
		Serve: func(t *testing.T, img conformance.Stored) types.ImageReference {
			return parse(t, fstransport.New("fs", imageFS(img)), "team/app")
		},
		Missing: func(t *testing.T) types.ImageReference {
			return parse(t, fstransport.New("fs", fstest.MapFS{}), "team/none")
		},
	})
}

// imageFS lays img out as fstransport reads it, under the name team/app.
func imageFS(img conformance.Stored) fstest.MapFS {
	fsys := fstest.MapFS{
		"team/app/manifest.json": {Data: img.Manifest.Data},
		"team/app/mediatype":     {Data: []byte(img.Manifest.MediaType)},
	}
	for _, b := range append(img.Instances, img.Blobs...) {
		fsys[path.Join("blobs", b.Digest.Algorithm().String(), b.Digest.Encoded())] = &fstest.MapFile{Data: b.Data}
	}
	return fsys
}

func parse(t *testing.T, tr types.ImageTransport, name string) types.ImageReference {
	t.Helper()
	ref, err := tr.ParseReference(name)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
