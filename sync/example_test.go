package sync_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	syncer "github.com/imgcopy/imgcopy/sync"
	"github.com/imgcopy/imgcopy/transports/alltransports"
)

// Mirror every image of the repository's sample OCI layout into another layout, then sync
// again: the second plan finds the image up to date and copies nothing. Against registries
// only the names change (docker://HOST/REPO as a source, docker://HOST[/PREFIX] as the
// destination).
func Example() {
	tmp, err := os.MkdirTemp("", "imgcopy-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	opts := syncer.Options{
		Transports:  alltransports.List(),
		Sources:     []syncer.Source{{Name: "oci:../examples/hello"}},
		Destination: "oci:" + filepath.Join(tmp, "mirror"),
	}
	for run := 1; run <= 2; run++ {
		plan, err := syncer.NewPlan(context.Background(), opts)
		if err != nil {
			log.Fatal(err)
		}
		rep, err := plan.Run(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		if err := rep.Err(); err != nil { // the failures of single images
			log.Fatal(err)
		}
		for _, r := range rep.Images {
			fmt.Printf("run %d: %s %s %.19s\n", run, r.Action, strings.TrimPrefix(r.Destination, opts.Destination+":"), r.Digest)
		}
	}
	// Output:
	// run 1: copied latest sha256:82d139ada46f
	// run 2: up-to-date latest sha256:82d139ada46f
}

// Read sources from YAML in skopeo sync's format (here with imgcopy's tag filters and a
// destination template), then print what the file selects. ReadConfig checks every key and
// pattern and names the line of a mistake.
func ExampleReadConfig() {
	const config = `
registry.example:
  images-by-tag-regex:
    team/app: '^v1\.'
  repositories:
    team/web:
      semver: ">=2.1 <3"
      exclude: ['-rc']
      destination: "frontend/{{.Name}}"
`
	sources, err := syncer.ReadConfig(strings.NewReader(config), "sync.yaml", nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range sources {
		fmt.Println(s.Name, "from", s.Origin, "with", len(s.Filters), "filter(s)")
	}
	_, err = syncer.ReadConfig(strings.NewReader("registry.example:\n  image: {app: [v1]}\n"), "typo.yaml", nil)
	fmt.Println(err)
	// Output:
	// docker://registry.example/team/app from sync.yaml:4 with 1 filter(s)
	// docker://registry.example/team/web from sync.yaml:6 with 1 filter(s)
	// typo.yaml:2: unknown key "image" in registry registry.example (known keys: images, images-by-tag-regex, images-by-semver, credentials, tls-verify, cert-dir, auth-file, platforms, destination, repositories)
}
