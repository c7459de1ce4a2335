package alltransports_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/transports/alltransports"
	"github.com/imgcopy/imgcopy/types"
)

// Parse an image name with the standard transports and list the tags of its repository,
// layout or archive: references that can list tags implement types.TagLister.
func ExampleParseImageName() {
	ref, err := alltransports.ParseImageName("oci:../../examples/hello:latest")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ref.Transport().Name(), ref.StringWithinTransport())
	lister, ok := ref.(types.TagLister)
	if !ok {
		log.Fatalf("%s cannot list tags", types.ImageName(ref))
	}
	tags, err := lister.ListTags(context.Background(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tags)

	_, err = alltransports.ParseImageName("podman:hello")
	fmt.Println(types.Classify(err), err)
	// Output:
	// oci ../../examples/hello:latest
	// [latest]
	// usage transport "podman" in "podman:hello" (known transports: dir, docker, docker-archive, oci, oci-archive): unknown transport
}

// Copy every image of one store into another, as a sync or a bundle does, with the store
// interfaces of the types package: the source lists its images (types.ImageLister), the
// destination store names an image by its stored name (types.StoreReference) and, when it
// is rewritten as a whole like an archive, writes them all in one session that its Commit
// makes visible at once (types.StoreWriterOpener).
func ExampleParseStoreName() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "imgcopy-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	from, err := alltransports.ParseStoreName("oci:../../examples/hello")
	if err != nil {
		log.Fatal(err)
	}
	to, err := alltransports.ParseStoreName("oci-archive:" + filepath.Join(tmp, "bundle.tar"))
	if err != nil {
		log.Fatal(err)
	}
	images, err := from.(types.ImageLister).ListImages(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	var name func(string) (types.ImageReference, error) = to.ImageReference
	var session types.StoreWriter
	if opener, ok := to.(types.StoreWriterOpener); ok {
		if session, err = opener.NewStoreWriter(ctx, nil); err != nil {
			log.Fatal(err)
		}
		defer session.Close()
		name = session.ImageReference
	}
	for _, img := range images {
		dest, err := name("samples/hello:" + img.StoredName)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := copier.Image(ctx, dest, img.Ref, nil); err != nil {
			log.Fatal(err)
		}
	}
	if session != nil {
		if err := session.Commit(ctx); err != nil {
			log.Fatal(err)
		}
	}

	bundled, err := to.(types.ImageLister).ListImages(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, img := range bundled {
		fmt.Println(img.StoredName, img.Digest)
	}
	// Output:
	// samples/hello:latest sha256:82d139ada46f01edb1ffc3b07ffc5d5dfb962ed9980df00a9fcbb366008725db
}
