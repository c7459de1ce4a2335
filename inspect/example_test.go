package inspect_test

import (
	"context"
	"fmt"
	"log"

	"github.com/imgcopy/imgcopy/inspect"
	"github.com/imgcopy/imgcopy/transports/alltransports"
)

// Summarize an image the way `skopeo inspect` (and `imgcopy inspect`) does. RepoTags lists
// the names the image's storage holds, here the layout's ref.name annotations.
func ExampleInspect() {
	ref, err := alltransports.ParseImageName("oci:../examples/hello:latest")
	if err != nil {
		log.Fatal(err)
	}
	out, err := inspect.Inspect(context.Background(), ref, nil, inspect.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Digest)
	fmt.Println(out.Os+"/"+out.Architecture, out.Created.UTC(), out.RepoTags)
	fmt.Println(out.Labels["org.opencontainers.image.title"], out.Labels["org.opencontainers.image.version"])
	for _, l := range out.LayersData {
		fmt.Println(l.Digest, l.Size)
	}
	// Output:
	// sha256:82d139ada46f01edb1ffc3b07ffc5d5dfb962ed9980df00a9fcbb366008725db
	// linux/amd64 2024-01-02 03:04:05 +0000 UTC [latest]
	// hello 1.0.0
	// sha256:f9f3f340f5a02dbfd51f7c8b3d623e432ba124bb6973af3f3a70f2048e749fd9 245
	// sha256:107e38d6b0865fc361f3279bc487058fe9ed94c6766cca286b8e06804431d5bb 24905
}

// Read the manifest and config themselves, for what the summary leaves out. The config's
// digest was checked as it was read.
func ExampleRead() {
	ref, err := alltransports.ParseImageName("oci:../examples/hello:latest")
	if err != nil {
		log.Fatal(err)
	}
	img, err := inspect.Read(context.Background(), ref, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.MIMEType)
	fmt.Println(img.Instance.ConfigInfo().Digest, len(img.Config), "bytes of config")
	// Output:
	// application/vnd.oci.image.manifest.v1+json
	// sha256:db0af31179fb0c71a236546c272aeab80e952c50b424b78c86ffe39eef5ff001 757 bytes of config
}
