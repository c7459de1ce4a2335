package layout

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/imgcopy/imgcopy/types"
)

// TestOtherFormatNamed: a layout without an oci-layout file that holds another transport's
// image is a usage mistake naming the reference that reads it; anything else stays an
// invalid layout.
func TestOtherFormatNamed(t *testing.T) {
	t.Parallel()
	file := &fstest.MapFile{Data: []byte("{}")}
	cases := []struct {
		name  string
		fsys  fstest.MapFS
		usage string // the reference the error names; "" for a plain invalid layout
	}{
		{"docker save archive", fstest.MapFS{"manifest.json": file, "repositories": file}, "docker-archive:/x.tar"},
		{"dir: image", fstest.MapFS{"manifest.json": file, "version": file}, "dir:/x.tar"},
		{"neither", fstest.MapFS{"index.json": file}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ReadIndex(tc.fsys, "/x.tar")
			if !errors.Is(err, ErrInvalidLayout) {
				t.Fatalf("got %v, want an invalid layout", err)
			}
			var wf *types.WrongFormatError
			isWrong := errors.As(err, &wf)
			if isWrong != (tc.usage != "") || (isWrong && (wf.Use != tc.usage || types.Classify(err).ExitCode() != 2 || !strings.Contains(err.Error(), "read it as "+tc.usage))) {
				t.Errorf("got %v (exit %d), want it read as %q", err, types.Classify(err).ExitCode(), tc.usage)
			}
		})
	}
}
