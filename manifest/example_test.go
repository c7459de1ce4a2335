package manifest_test

import (
	"fmt"
	"log"
	"os"

	"github.com/imgcopy/imgcopy/manifest"
)

// Parse a manifest of any supported schema and read its blobs. FromBlob picks the schema
// from the MIME type (or, given "", from the content); Serialize returns the bytes
// unchanged, so the digest survives a parse.
func ExampleFromBlob() {
	b, err := os.ReadFile("../examples/hello/blobs/sha256/82d139ada46f01edb1ffc3b07ffc5d5dfb962ed9980df00a9fcbb366008725db")
	if err != nil {
		log.Fatal(err)
	}
	m, err := manifest.FromBlob(b, manifest.GuessMIMEType(b))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.MIMEType())
	fmt.Println("config", m.ConfigInfo().Digest)
	for _, l := range m.LayerInfos() {
		fmt.Println("layer", l.Digest, l.Size, manifest.LayerCompression(l.MediaType))
	}
	d, err := manifest.Digest(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("digest", d)
	// Output:
	// application/vnd.oci.image.manifest.v1+json
	// config sha256:db0af31179fb0c71a236546c272aeab80e952c50b424b78c86ffe39eef5ff001
	// layer sha256:f9f3f340f5a02dbfd51f7c8b3d623e432ba124bb6973af3f3a70f2048e749fd9 245 gzip
	// layer sha256:107e38d6b0865fc361f3279bc487058fe9ed94c6766cca286b8e06804431d5bb 24905 gzip
	// digest sha256:82d139ada46f01edb1ffc3b07ffc5d5dfb962ed9980df00a9fcbb366008725db
}
