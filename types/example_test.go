package types_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// Tell failures apart without parsing messages: every error wraps a sentinel of this package
// (test it with errors.Is) and falls into a class (Classify), which the CLI turns into its
// exit code.
func ExampleClassify() {
	ref, err := alltransports.ParseImageName("oci:../examples/hello:no-such-tag")
	if err != nil {
		log.Fatal(err)
	}
	_, err = ref.NewImageSource(context.Background(), nil)
	fmt.Println(errors.Is(err, types.ErrManifestNotFound), types.Classify(err), types.Classify(err).ExitCode())

	_, err = alltransports.ParseImageName("oci:../examples/hello:Not A Tag")
	fmt.Println(errors.Is(err, types.ErrUsage), types.Classify(err), types.Classify(err).ExitCode())
	// Output:
	// true not-found 3
	// true usage 2
}
