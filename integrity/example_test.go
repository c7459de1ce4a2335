package integrity_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/imgcopy/imgcopy/integrity"
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
