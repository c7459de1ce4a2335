package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestStageBlob checks the verification of a staged blob and that a failed one leaves nothing.
func TestStageBlob(t *testing.T) {
	data := []byte("layer bytes")
	good := digest.FromBytes(data)
	boom := errors.New("stream broke")
	cases := []struct {
		name     string
		r        io.Reader
		expected digest.Digest
		size     int64
		wantErr  error
	}{
		{name: "verified", r: bytes.NewReader(data), expected: good, size: int64(len(data))},
		{name: "digest computed when not given", r: bytes.NewReader(data), size: -1},
		{name: "wrong digest", r: bytes.NewReader(data), expected: digest.FromString("x"), size: -1, wantErr: types.ErrDigestMismatch},
		{name: "wrong size", r: bytes.NewReader(data), expected: good, size: 3, wantErr: types.ErrDigestMismatch},
		{name: "failing stream", r: io.MultiReader(bytes.NewReader(data[:4]), iotest.ErrReader(boom)), expected: good, size: -1, wantErr: boom},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := NewSyncer(true)
			d, n, err := s.StageBlob(dir, tc.r, tc.expected, tc.size, false, 0, func(d digest.Digest) string {
				return filepath.Join(dir, d.Encoded())
			})
			if serr := s.Sync(nil, nil); serr != nil {
				t.Fatal(serr)
			}
			entries, _ := os.ReadDir(dir)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				if len(entries) != 0 {
					t.Errorf("failed write left %d files behind", len(entries))
				}
				return
			}
			if err != nil || d != good || n != int64(len(data)) {
				t.Fatalf("got %s %d %v", d, n, err)
			}
			got, err := os.ReadFile(filepath.Join(dir, good.Encoded()))
			if err != nil || !bytes.Equal(got, data) || len(entries) != 1 {
				t.Fatalf("stored %q (%v), %d entries", got, err, len(entries))
			}
		})
	}
}

func TestWriteFileReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "index.json")
	for _, content := range []string{"first", "second"} {
		if err := WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temp files left: %d entries", len(entries))
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "nope", "f"), []byte("x"), 0o644)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want ErrNotExist", err)
	}
}
