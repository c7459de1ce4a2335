package fstransport_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/examples/fstransport"
	"github.com/imgcopy/imgcopy/tests/conformance"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// Copy an image a program carries in a file system (here built in memory; an embed.FS in a
// real program) into an OCI layout, through the standard transport list plus this one.
func Example() {
	img, err := conformance.BuildImage(conformance.ImageOptions{MIMEType: "application/vnd.oci.image.manifest.v1+json"})
	if err != nil {
		panic(err)
	}
	transports, err := types.NewTransportList(append(alltransports.List(), fstransport.New("embedded", imageFS(img.Stored())))...)
	if err != nil {
		panic(err)
	}
	src, err := transports.ParseImageName("embedded:team/app")
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "fstransport-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	dest, err := transports.ParseImageName("oci:" + filepath.Join(dir, "layout") + ":app")
	if err != nil {
		panic(err)
	}
	res, err := copier.Image(context.Background(), dest, src, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("digest kept:", res.ManifestDigest == img.Digest)

	// Writing is refused with a usage error.
	_, err = copier.Image(context.Background(), src, dest, nil)
	fmt.Println(types.Classify(err))
	// Output:
	// digest kept: true
	// usage
}
