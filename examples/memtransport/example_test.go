package memtransport_test

import (
	"context"
	"fmt"
	"log"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/examples/memtransport"
	"github.com/imgcopy/imgcopy/inspect"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// A custom transport joins the standard ones in a transport list; from then on every
// library entry point uses it like any other. Here the sample image goes into an
// in-memory store and is inspected there.
func Example() {
	ctx := context.Background()
	store := memtransport.New("mem")
	transports, err := types.NewTransportList(append(alltransports.List(), store)...)
	if err != nil {
		log.Fatal(err)
	}
	src, err := transports.ParseImageName("oci:../hello:latest")
	if err != nil {
		log.Fatal(err)
	}
	dest, err := transports.ParseImageName("mem:samples/hello:1.0")
	if err != nil {
		log.Fatal(err)
	}
	res, err := copier.Image(ctx, dest, src, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("copied", res.ManifestDigest, "digest changed:", res.DigestChanged)

	out, err := inspect.Inspect(ctx, dest, nil, inspect.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Name, out.RepoTags, out.Os+"/"+out.Architecture, len(out.Layers), "layers")
	// Output:
	// copied sha256:82d139ada46f01edb1ffc3b07ffc5d5dfb962ed9980df00a9fcbb366008725db digest changed: false
	// docker.io/samples/hello [samples/hello:1.0] linux/amd64 2 layers
}
