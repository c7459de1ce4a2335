package integrity

import (
	"bytes"
	"errors"
	"io"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/types"
)

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestVerifiedBlob(t *testing.T) {
	t.Parallel()
	content := []byte("layer content")
	d := digest.FromBytes(content)
	for _, tc := range []struct {
		name    string
		served  []byte
		info    types.BlobInfo
		wantErr error // nil: reads to EOF
	}{
		{"match", content, types.BlobInfo{Digest: d, Size: int64(len(content))}, nil},
		{"match, size unknown", content, types.BlobInfo{Digest: d, Size: -1}, nil},
		{"other content", []byte("layer CONTENT"), types.BlobInfo{Digest: d, Size: int64(len(content))}, types.ErrDigestMismatch},
		{"other content, size unknown", []byte("other"), types.BlobInfo{Digest: d, Size: -1}, types.ErrDigestMismatch},
		{"truncated", content[:4], types.BlobInfo{Digest: d, Size: int64(len(content))}, types.ErrDigestMismatch},
		{"longer", append(content, 'x'), types.BlobInfo{Digest: d, Size: int64(len(content))}, types.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &closeCounter{Reader: bytes.NewReader(tc.served)}
			rc, err := VerifiedBlob(src, tc.info)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			if tc.wantErr == nil && (err != nil || !bytes.Equal(got, content)) {
				t.Errorf("read %q, %v; want the content", got, err)
			}
			var mismatch types.DigestMismatchError
			if tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !errors.As(err, &mismatch) || types.Classify(err) != types.ClassVerification) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if rc.Close(); src.closed != 1 {
				t.Errorf("source stream closed %d times, want 1", src.closed)
			}
		})
	}
}

func TestVerifiedBlobNeedsDigest(t *testing.T) {
	t.Parallel()
	for _, d := range []digest.Digest{"", "sha256:short", "md5:0123"} {
		if _, err := VerifiedBlob(io.NopCloser(bytes.NewReader(nil)), types.BlobInfo{Digest: d, Size: 0}); !errors.Is(err, types.ErrUsage) {
			t.Errorf("digest %q: error %v, want a usage error", d, err)
		}
	}
}
