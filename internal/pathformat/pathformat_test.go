package pathformat

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// tarOf returns a tar holding members with the given names (a little content each).
func tarOf(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFileNotDirectory: a tar of an OCI layout or of a docker save (also with the blobs
// before the metadata, as docker save writes them) is named with the archive reference that
// reads or writes it; anything else (a compressed tar, not a tar) gets the usage error.
func TestFileNotDirectory(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		content []byte
		writing bool
		want    string // "" for the usage error
	}{
		{"OCI layout tar", tarOf(t, "blobs/sha256/aa", "./oci-layout", "index.json"), false, "it holds an OCI image layout in a tar: read it as oci-archive:"},
		{"docker save tar, metadata last", tarOf(t, "abc/layer.tar", "abc.json", "manifest.json"), false, "it holds a docker save archive: read it as docker-archive:"},
		{"docker save with an OCI layout", tarOf(t, "oci-layout", "index.json", "manifest.json"), true, "it holds a docker save archive: write to it with docker-archive:"},
		{"compressed tar", gzipOf(t, tarOf(t, "oci-layout")), false, ""},
		{"not a tar", []byte("notes"), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(p, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			checkError(t, FileNotDirectory("oci", p, tc.writing), tc.want, p, "is a file, not a directory: oci: reads and writes directories")
		})
	}
}

// TestDirectoryNotArchive: a directory holding an OCI layout or a dir: image is named with
// the reference for it; another directory gets the usage error.
func TestDirectoryNotArchive(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files []string
		want  string
	}{
		{"OCI layout", []string{"oci-layout", "index.json"}, "it holds an OCI image layout: read it as oci:"},
		{"dir: image", []string{"manifest.json", "version"}, "it holds a dir: image: read it as dir:"},
		{"extracted docker save", []string{"manifest.json"}, ""},
		{"empty", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			checkError(t, DirectoryNotArchive("docker-archive", dir, false), tc.want, dir, "is a directory, not a tar file: docker-archive: reads and writes tar files")
		})
	}
}

// checkError checks that err is of the usage class and a WrongFormatError saying want and the
// path p, or, for want "", the plain usage error saying generic.
func checkError(t *testing.T, err error, want, p, generic string) {
	t.Helper()
	var wrong *types.WrongFormatError
	switch {
	case types.Classify(err) != types.ClassUsage:
		t.Errorf("%v: class %v, want usage", err, types.Classify(err))
	case want == "" && (errors.As(err, &wrong) || !strings.Contains(err.Error(), generic)):
		t.Errorf("%v: want the usage error saying %q", err, generic)
	case want != "" && (!errors.As(err, &wrong) || !strings.Contains(err.Error(), want+p)):
		t.Errorf("%v: want a WrongFormatError saying %q", err, want+p)
	}
}

// TestNotDirectoryKeepsOtherErrors: only a path that exists and is not a directory changes the
// error; a missing path keeps it.
func TestNotDirectoryKeepsOtherErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	_, openErr := os.Open(missing)
	if err := NotDirectory("oci", missing, false, openErr); err != openErr {
		t.Errorf("missing path: %v, want the error given", err)
	}
	if err := NotDirectory("oci", t.TempDir(), false, openErr); err != openErr {
		t.Errorf("a directory: %v, want the error given", err)
	}
}

// TestNotDirectoryBelowFile: an image of a store whose root is a file (dir:FILE/app:1) is
// explained by the file, not "not a directory".
func TestNotDirectoryBelowFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "store")
	if err := os.WriteFile(file, []byte("not a store"), 0o644); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(file, "team", "app:1")
	_, openErr := os.Open(image)
	err := NotDirectory("dir", image, true, openErr)
	if types.Classify(err) != types.ClassUsage || !strings.Contains(err.Error(), file+" is a file, not a directory") {
		t.Fatalf("got %v (class %v), want a usage error naming %s", err, types.Classify(err), file)
	}
}
