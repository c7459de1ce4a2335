package copy_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/imgcopy/imgcopy/blobinfocache/boltdb"
	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/transports/alltransports"
)

// The sample image of the repository, an OCI layout; the examples run in this package's
// directory.
const sample = "oci:../examples/hello:latest"

// Copy the sample image into a directory, as `imgcopy oci:examples/hello:latest dir:DIR`
// does. A copy that needs no conversion keeps the manifest byte for byte, so the digest is
// the source's.
func ExampleImage() {
	tmp, err := os.MkdirTemp("", "imgcopy-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	src, err := alltransports.ParseImageName(sample)
	if err != nil {
		log.Fatal(err)
	}
	dest, err := alltransports.ParseImageName("dir:" + filepath.Join(tmp, "hello"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := copier.Image(context.Background(), dest, src, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.ManifestDigest)
	fmt.Println("digest changed:", res.DigestChanged, "blobs copied:", res.BlobsCopied, "bytes:", res.BytesCopied)
	// Output:
	// sha256:82d139ada46f01edb1ffc3b07ffc5d5dfb962ed9980df00a9fcbb366008725db
	// digest changed: false blobs copied: 3 bytes: 25907
}

// Follow a copy with progress events: Options.Progress is called from the goroutines that
// copy the blobs (so it must be safe for concurrent use and return quickly); events of one
// blob arrive in order, those of different blobs interleave.
func ExampleImage_progress() {
	tmp, err := os.MkdirTemp("", "imgcopy-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	src, err := alltransports.ParseImageName(sample)
	if err != nil {
		log.Fatal(err)
	}
	dest, err := alltransports.ParseImageName("oci-archive:" + filepath.Join(tmp, "hello.tar") + ":latest")
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	var done []string
	opts := &copier.Options{Progress: func(ev copier.ProgressEvent) {
		switch ev.Kind {
		case copier.EventBlobDone, copier.EventManifestWritten:
			mu.Lock()
			defer mu.Unlock()
			done = append(done, fmt.Sprintf("%s %.19s %d", ev.Kind, ev.Digest, ev.Size))
		}
	}}
	if _, err := copier.Image(context.Background(), dest, src, opts); err != nil {
		log.Fatal(err)
	}
	slices.Sort(done)
	for _, line := range done {
		fmt.Println(line)
	}
	// Output:
	// blob-done sha256:107e38d6b086 24905
	// blob-done sha256:db0af31179fb 757
	// blob-done sha256:f9f3f340f5a0 245
	// manifest-written sha256:82d139ada46f 631
}

// Share what copies learn through a persistent blob-info cache (the CLI's default): a copy
// that decompresses layers records each layer's uncompressed digest, and a later copy, in
// this process or another, finds it without decompressing again.
func ExampleImage_persistentCache() {
	tmp, err := os.MkdirTemp("", "imgcopy-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cachePath := filepath.Join(tmp, "blob-info-cache.boltdb") // the CLI uses boltdb.DefaultPath()

	src, err := alltransports.ParseImageName(sample)
	if err != nil {
		log.Fatal(err)
	}
	dest, err := alltransports.ParseImageName("dir:" + filepath.Join(tmp, "plain"))
	if err != nil {
		log.Fatal(err)
	}
	opts := &copier.Options{BlobInfoCache: boltdb.Open(cachePath), DestinationDecompress: true}
	res, err := copier.Image(context.Background(), dest, src, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("digest changed:", res.DigestChanged)

	// copy.Image flushed the cache before returning: another handle on the file (another
	// process, a later run) sees the records.
	later := boltdb.Open(cachePath)
	fmt.Println(later.UncompressedDigest("sha256:f9f3f340f5a02dbfd51f7c8b3d623e432ba124bb6973af3f3a70f2048e749fd9"))
	// Output:
	// digest changed: true
	// sha256:edf44d311e08a6b54767052e25b012f149552ac75e00f248625c6d7fda9ff988
}
