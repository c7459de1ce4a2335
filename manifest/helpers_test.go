package manifest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Known digests of testdata files. The schema1 one is the registry digest (over the signed
// payload) that other projects' tests list for the same containers/image fixture.
const (
	schema1SignedDigest       = "sha256:7364fea9d84ee548ab67d4c46c6006289800c98de3fbf8c0a97138dfcc23f000"
	schema1SignedDigestSHA512 = "sha512:987d6df9aca32adc296bd0698cc7407f12605b4d5e8f0de2ca5d0c43f22d894082e96fb0a02c0f659db3bb8314912dd0a1fcb5cb421c04cd5cb468ad3829d9f7"
)

// readTestdata returns the bytes of testdata/name.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mutateJSON decodes testdata/name, applies edit to the generic document and re-encodes it.
func mutateJSON(t testing.TB, name string, edit func(doc map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readTestdata(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at returns the object at doc[key][i] (for editing descriptors in lists).
func at(doc map[string]any, key string, i int) map[string]any {
	return doc[key].([]any)[i].(map[string]any)
}

// mustFromBlob parses testdata/name as a single-image manifest.
func mustFromBlob(t testing.TB, name string) Manifest {
	t.Helper()
	m, err := FromBlob(readTestdata(t, name), "")
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return m
}

// mustIndexFromBlob parses testdata/name as an index.
func mustIndexFromBlob(t testing.TB, name string) Index {
	t.Helper()
	idx, err := IndexFromBlob(readTestdata(t, name), "")
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return idx
}

// allTestdata lists the manifest and index files used as fuzz seeds and round-trip inputs.
var allTestdata = []string{
	"docker-schema2.json", "docker-list.json",
	"oci-manifest.json", "oci-artifact-minimal.json", "oci-artifact-without-config.json",
	"oci-artifact-with-config.json", "oci-index.json", "oci-index-nested.json",
	"schema1-signed.json", "schema1-libtrust-signed.json", "schema1-unsigned.json", "schema1-throwaway.json",
	"schema1-tampered-signed.json",
}
