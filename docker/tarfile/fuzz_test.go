package tarfile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// seedManifestJSON are manifest.json files in the shapes real tools write.
var seedManifestJSON = []string{
	// docker save (classic)
	`[{"Config":"4e38e38c8ce0b8d9041a9c4fefe786631d1416225e13b0bfe8cfa2321aec4bba.json","RepoTags":["busybox:latest"],"Layers":["a1b2/layer.tar"]}]`,
	// Docker 25+
	`[{"Config":"blobs/sha256/4e38e38c8ce0b8d9041a9c4fefe786631d1416225e13b0bfe8cfa2321aec4bba","RepoTags":["busybox:latest"],"Layers":["blobs/sha256/1b1aeeff82c5759fe8957d9b0141a642e9b537f749be9aa2abaca523295a6349"],"LayerSources":{"sha256:1b1aeeff82c5759fe8957d9b0141a642e9b537f749be9aa2abaca523295a6349":{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":10,"digest":"sha256:1b1aeeff82c5759fe8957d9b0141a642e9b537f749be9aa2abaca523295a6349"}}}]`,
	// crane
	`[{"Config":"sha256:4e38e38c8ce0b8d9041a9c4fefe786631d1416225e13b0bfe8cfa2321aec4bba","RepoTags":["gcr.io/x/y:v1"],"Layers":["1b1aeeff.tar.gz"]}]`,
	// two images, no tags
	`[{"Config":"a.json","RepoTags":null,"Layers":[]},{"Config":"b.json","Layers":["x.tar","x.tar"]}]`,
	`[{"Config":"../a.json"}]`, `[{"Config":"/abs"}]`, `[]`, `{}`, `null`, `[{"Config":"a.json","RepoTags":["a@sha256:1"]}]`,
}

func FuzzManifestJSON(f *testing.F) {
	for _, s := range seedManifestJSON {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := ParseManifestJSON(b)
		if err != nil {
			return
		}
		if len(items) == 0 {
			t.Fatal("no error for an empty manifest.json")
		}
		for _, it := range items {
			if err := checkManifestItem(&it); err != nil {
				t.Fatalf("accepted an item that does not check: %v", err)
			}
		}
	})
}

// FuzzReadArchive opens arbitrary bytes as an archive and reads its first image's manifest:
// any input must give an error or a manifest, never a panic.
func FuzzReadArchive(f *testing.F) {
	img := newTestImage(f, 2, "amd64")
	d25, _ := docker25Members(f, img, "a:1")
	gz, _ := craneMembers(f, img, "a:1", gzipData)
	f.Add(buildTar(f, classicMembers(f, img, "a:1")))
	f.Add(buildTar(f, d25))
	f.Add(buildTar(f, gz))
	f.Add(gzipData(f, buildTar(f, gz)))
	dir := f.TempDir() // one file rewritten per input keeps executions (and minimizing) fast
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "a.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := openSource(t, p, nil, "", 0)
		if err != nil {
			return
		}
		src.GetManifest(context.Background(), nil)
	})
}
