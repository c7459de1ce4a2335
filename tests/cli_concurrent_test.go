package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/imgcopy/imgcopy/internal/testregistry"
)

const writers = 8

// runAll starts one child per argument list at once, all with the same home, and waits for
// them; it fails the test unless every one exits 0 without a warning.
func runAll(t *testing.T, home string, argLists [][]string) {
	t.Helper()
	children := make([]*child, len(argLists))
	for i, args := range argLists {
		children[i] = startChild(t, home, nil, args...)
	}
	for i, c := range children {
		code, _, stderr := c.wait(time.Minute)
		if code != 0 || strings.Contains(stderr, "level=warning") || strings.Contains(stderr, "Warning") {
			t.Errorf("writer %d (%v): exit %d; stderr:\n%s", i, argLists[i], code, stderr)
		}
	}
}

// TestCLIManyWriters runs 8 processes at once: copying 8 different images into one OCI
// layout (the index lists all 8), and pushing one image to 8 tags of one repository, all
// sharing one persistent blob-info cache that another process keeps locked meanwhile (each
// waits briefly, then goes on in memory with a debug line, never a failure or a warning).
func TestCLIManyWriters(t *testing.T) {
	t.Parallel()
	srcDir := filepath.Join(t.TempDir(), "src")
	entries := map[string]imgspecv1.Descriptor{}
	for i := range writers {
		img := buildImage(t, srcDir, [][]byte{tarLayer(t, "shared", 4096), tarLayer(t, fmt.Sprintf("own-%d", i), 4096)})
		entries[fmt.Sprintf("img%d", i)] = img.desc
	}
	writeIndex(t, srcDir, entries)
	reg := testregistry.Start(t, testregistry.Options{})

	home := t.TempDir()
	cache := filepath.Join(home, "cache", "imgcopy", "blob-info-cache.db")
	if err := os.MkdirAll(filepath.Dir(cache), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(cache, 0o600, nil) // holds the file's exclusive lock
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	layout := filepath.Join(t.TempDir(), "layout")
	var toLayout, toTags [][]string
	for i := range writers {
		toLayout = append(toLayout, []string{"--quiet", fmt.Sprintf("oci:%s:img%d", srcDir, i), fmt.Sprintf("oci:%s:img%d", layout, i)})
		toTags = append(toTags, []string{"--quiet", "oci:" + srcDir + ":img0", fmt.Sprintf("docker://%s/many/app:t%d", reg.Host, i)})
	}
	var wg sync.WaitGroup
	for _, lists := range [][][]string{toLayout, toTags} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runAll(t, home, lists)
		}()
	}
	wg.Wait()

	res := mustCLI(t, "list-tags", "oci:"+layout)
	for i := range writers {
		if !strings.Contains(res.stdout, fmt.Sprintf(`"img%d"`, i)) {
			t.Errorf("the layout's index lacks img%d: %s", i, res.stdout)
		}
	}
	mustCLI(t, "verify", "--quiet", "oci:"+layout)
	res = mustCLI(t, "list-tags", "docker://"+reg.Host+"/many/app")
	for i := range writers {
		if !strings.Contains(res.stdout, fmt.Sprintf(`"t%d"`, i)) {
			t.Errorf("the repository lacks tag t%d: %s", i, res.stdout)
		}
	}
	if l := leftovers(t, layout); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

// TestCLIOddImages copies odd but valid images into every destination kind: a manifest listing
// the same layer twice, an index listing the same manifest twice, a path with spaces and
// non-ASCII characters, and an image of 500 small layers.
func TestCLIOddImages(t *testing.T) {
	t.Parallel()
	srcDir := filepath.Join(t.TempDir(), "src dir ü")
	dup := tarLayer(t, "dup", 1024)
	twice := buildImage(t, srcDir, [][]byte{dup, tarLayer(t, "other", 1024), dup})
	var many [][]byte
	for i := range 500 {
		many = append(many, tarLayer(t, fmt.Sprintf("l%d", i), 64))
	}
	big := buildImage(t, srcDir, many)
	idx := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex}
	for range 2 {
		d := twice.desc
		d.Platform = &imgspecv1.Platform{OS: "linux", Architecture: "amd64"}
		idx.Manifests = append(idx.Manifests, d)
	}
	ib, _ := json.Marshal(idx)
	idxDesc := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageIndex, Digest: writeBlob(t, srcDir, ib), Size: int64(len(ib))}
	writeIndex(t, srcDir, map[string]imgspecv1.Descriptor{"twice": twice.desc, "many": big.desc, "index": idxDesc})
	reg := testregistry.Start(t, testregistry.Options{})

	kinds := []struct{ kind, dest string }{
		{"oci", "oci:%s:%s"}, {"oci-archive", "oci-archive:%s.tar:%s"}, {"docker-archive", "docker-archive:%s.tar:odd:%s"},
		{"dir", "dir:%s-%s"}, {"registry", "docker://%s/odd:%s"},
	}
	for _, image := range []string{"twice", "index", "many"} {
		for _, k := range kinds {
			if image == "index" && k.kind == "docker-archive" {
				continue // a docker-archive takes one instance, as docker save; "twice" covers it
			}
			t.Run(image+" to "+k.kind, func(t *testing.T) {
				t.Parallel()
				where := filepath.Join(t.TempDir(), "dést ïnation "+image)
				if k.kind == "registry" {
					where = reg.Host + "/" + strings.ReplaceAll(k.kind, "-", "")
				}
				dest := fmt.Sprintf(k.dest, where, image)
				start := time.Now()
				mustCLI(t, "--quiet", "oci:"+srcDir+":"+image, dest)
				if d := time.Since(start); d > 30*time.Second {
					t.Errorf("the copy took %v", d)
				}
				mustCLI(t, "verify", "--quiet", dest)
			})
		}
	}
}
