package integrity_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/imgcopy/imgcopy/integrity"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// Check every image of a layout against its digests, as `imgcopy verify` does. Problems
// come back in the report and, together, as an *integrity.Error (class verification).
func ExampleCheck() {
	ref, err := alltransports.ParseImageName("oci:../examples/hello")
	if err != nil {
		log.Fatal(err)
	}
	report, err := integrity.Check(context.Background(), ref, nil, integrity.Options{})
	var bad *integrity.Error
	switch {
	case errors.As(err, &bad):
		fmt.Println(types.Classify(err), len(bad.Problems), "problems")
	case err != nil:
		log.Fatal(err) // the check itself could not run
	}
	fmt.Println(report.Images, "image,", report.Manifests, "manifest,", report.Blobs, "blobs,", report.Bytes, "bytes,", len(report.Problems), "problems")
	// Output:
	// 1 image, 1 manifest, 3 blobs, 25907 bytes, 0 problems
}

// Read a layer straight from an image source, checked against its digest as copy.Image
// checks every blob: a source need not verify what it serves, so use the content only once
// the verified stream reached its end without an error.
func ExampleVerifiedBlob() {
	ctx := context.Background()
	ref, err := alltransports.ParseImageName("oci:../examples/hello:latest")
	if err != nil {
		log.Fatal(err)
	}
	src, err := ref.NewImageSource(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	b, mimeType, err := src.GetManifest(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := manifest.FromBlob(b, mimeType)
	if err != nil {
		log.Fatal(err)
	}
	layer := m.LayerInfos()[0].BlobInfo
	rc, _, err := src.GetBlob(ctx, layer, types.GetBlobOptions{})
	if err != nil {
		log.Fatal(err)
	}
	verified, err := integrity.VerifiedBlob(rc, layer)
	if err != nil {
		log.Fatal(err)
	}
	defer verified.Close()
	n, err := io.Copy(io.Discard, verified) // an unpacker would read the tar here
	if errors.Is(err, types.ErrDigestMismatch) {
		log.Fatal("corrupt layer: ", err)
	}
	fmt.Println(n, "bytes of", layer.Digest.Encoded()[:12], "verified:", err == nil)
	// Output:
	// 245 bytes of f9f3f340f5a0 verified: true
}
