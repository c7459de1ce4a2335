package interop

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	godigest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// fixture is an OCI layout built by umoci, shared read-only by all tests:
//   - "v1": two gzip layers (/etc/hello.txt, /usr/share/interop/words.txt), a label and a cmd;
//   - "v2": one layer (/etc/other.txt);
//   - "multi": an OCI index of "multi-amd64" and "multi-arm64" (one layer each).
type fixture struct {
	dir     string
	digests map[string]string // ref name -> manifest (or index) digest
	configs map[string]string // ref name -> config digest (images only)
}

// fixtureFiles are the files each fixture image holds, path in the rootfs -> content.
var fixtureFiles = map[string]map[string]string{
	"v1": {
		"etc/hello.txt":               "hello from the imgcopy interop suite\n",
		"usr/share/interop/words.txt": strings.Repeat("container images move between tools without loss\n", 2000),
	},
	"v2":          {"etc/other.txt": "the other image\n"},
	"multi-amd64": {"etc/arch.txt": "amd64\n"},
	"multi-arm64": {"etc/arch.txt": "arm64\n"},
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixture
	fixtureErr  error
)

// getFixture builds the shared fixture on first use.
func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixtureOnce.Do(func() { fixtureVal, fixtureErr = buildFixture(t) })
	if fixtureErr != nil {
		t.Fatalf("building the umoci fixture: %v", fixtureErr)
	}
	return fixtureVal
}

func buildFixture(t *testing.T) (*fixture, error) {
	dir := filepath.Join(suite.work, "fixture")
	src := filepath.Join(suite.work, "fixture-src")
	umoci := func(args ...string) error {
		_, err := runErr(t, "umoci", args...)
		return err
	}
	if err := umoci("init", "--layout", dir); err != nil {
		return nil, err
	}
	arch := map[string]string{"v1": "amd64", "v2": "amd64", "multi-amd64": "amd64", "multi-arm64": "arm64"}
	for _, tag := range []string{"v1", "v2", "multi-amd64", "multi-arm64"} {
		image := dir + ":" + tag
		if err := umoci("new", "--image", image); err != nil {
			return nil, err
		}
		for _, path := range sortedKeys(fixtureFiles[tag]) {
			host := filepath.Join(src, tag, path)
			if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(host, []byte(fixtureFiles[tag][path]), 0o644); err != nil {
				return nil, err
			}
			if err := umoci("insert", "--rootless", "--image", image, host, "/"+path); err != nil {
				return nil, err
			}
		}
		if err := umoci("config", "--image", image, "--os", "linux", "--architecture", arch[tag],
			"--config.cmd", "/bin/true", "--config.label", "org.example.interop="+tag); err != nil {
			return nil, err
		}
	}
	if err := addIndex(dir, "multi", map[string]string{"multi-amd64": "amd64", "multi-arm64": "arm64"}); err != nil {
		return nil, err
	}
	f := &fixture{dir: dir, digests: map[string]string{}, configs: map[string]string{}}
	idx, err := readIndex(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range idx.Manifests {
		name := d.Annotations[imgspecv1.AnnotationRefName]
		f.digests[name] = d.Digest.String()
		if d.MediaType == imgspecv1.MediaTypeImageManifest {
			m, err := readManifest(dir, d.Digest.String())
			if err != nil {
				return nil, err
			}
			f.configs[name] = m.Config.Digest.String()
		}
	}
	return f, nil
}

// addIndex writes an OCI index of the named images (ref name -> architecture) into the layout
// and tags it name.
func addIndex(dir, name string, images map[string]string) error {
	idx, err := readIndex(dir)
	if err != nil {
		return err
	}
	byName := map[string]imgspecv1.Descriptor{}
	for _, d := range idx.Manifests {
		byName[d.Annotations[imgspecv1.AnnotationRefName]] = d
	}
	child := imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex}
	child.SchemaVersion = 2
	for _, tag := range sortedKeys(images) {
		d, ok := byName[tag]
		if !ok {
			return fmt.Errorf("no %q in %s", tag, dir)
		}
		d.Annotations = nil
		d.Platform = &imgspecv1.Platform{OS: "linux", Architecture: images[tag]}
		child.Manifests = append(child.Manifests, d)
	}
	b, err := json.Marshal(child)
	if err != nil {
		return err
	}
	digest := sha256Digest(b)
	if err := os.WriteFile(blobPath(dir, digest), b, 0o644); err != nil {
		return err
	}
	idx.Manifests = append(idx.Manifests, imgspecv1.Descriptor{
		MediaType:   imgspecv1.MediaTypeImageIndex,
		Digest:      godigest.Digest(digest),
		Size:        int64(len(b)),
		Annotations: map[string]string{imgspecv1.AnnotationRefName: name},
	})
	out, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), out, 0o644)
}

// blobPath is where an OCI layout keeps a blob.
func blobPath(dir, digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(dir, "blobs", alg, hex)
}

func readIndex(dir string) (*imgspecv1.Index, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var idx imgspecv1.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s/index.json: %v", dir, err)
	}
	return &idx, nil
}

func readManifest(dir, digest string) (*imgspecv1.Manifest, error) {
	b, err := os.ReadFile(blobPath(dir, digest))
	if err != nil {
		return nil, err
	}
	var m imgspecv1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s in %s: %v", digest, dir, err)
	}
	return &m, nil
}

// layoutEntry returns the descriptor tagged name in the layout's index.json.
func layoutEntry(t *testing.T, dir, name string) imgspecv1.Descriptor {
	t.Helper()
	idx, err := readIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range idx.Manifests {
		n := d.Annotations[imgspecv1.AnnotationRefName]
		if n == name {
			return d
		}
		names = append(names, n)
	}
	t.Fatalf("%s/index.json has no entry %q (has %q)", dir, name, names)
	return imgspecv1.Descriptor{}
}

// unpackAndCheck unpacks layout:tag with `umoci unpack --rootless` and checks the files of the
// fixture image want are in the root filesystem with their content.
func unpackAndCheck(t *testing.T, layoutDir, tag, want string) {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--rootless", "--image", layoutDir+":"+tag, bundle)
	checkRootfs(t, filepath.Join(bundle, "rootfs"), want)
}

// checkRootfs checks that the files of the fixture image want are in rootfs.
func checkRootfs(t *testing.T, rootfs, want string) {
	t.Helper()
	files, ok := fixtureFiles[want]
	if !ok {
		t.Fatalf("no fixture image %q", want)
	}
	for path, content := range files {
		got, err := os.ReadFile(filepath.Join(rootfs, path))
		if err != nil {
			t.Errorf("unpacked image lacks /%s: %v", path, err)
			continue
		}
		if string(got) != content {
			t.Errorf("/%s: content differs (%d bytes, want %d)", path, len(got), len(content))
		}
	}
}

// exampleImage returns "oci:examples/hello:REF" (absolute path) when the repository ships the
// sample layout, with its first ref name, or "" when it is not there yet.
func exampleImage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(suite.root, "examples", "hello")
	idx, err := readIndex(dir)
	if err != nil {
		t.Logf("examples/hello not usable (%v); using only the umoci fixture", err)
		return ""
	}
	for _, d := range idx.Manifests {
		if n := d.Annotations[imgspecv1.AnnotationRefName]; n != "" {
			return "oci:" + dir + ":" + n
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
