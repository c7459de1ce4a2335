//go:build unix

package tarstore

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/internal/staging"
)

// TestSalvage: a store created with Resume takes the complete, intact blobs of a tar that a
// killed writer left unfinished (after a gap of zeros, too), refuses an altered one, and
// removes the dead writer's staging directory when it ends.
func TestSalvage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, gap, altered := bytes.Repeat([]byte("g"), 3000), bytes.Repeat([]byte("p"), 700), bytes.Repeat([]byte("a"), 1000)
	dead := filepath.Join(dir, staging.LayoutPrefix+"killed") // its lock file is not held
	if err := os.Mkdir(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	member := func(b []byte, content []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "blobs/sha256/" + digest.FromBytes(b).Encoded(), Size: int64(len(content)), Format: tar.FormatPAX})
		tw.Write(content)
		tw.Flush()
	}
	member(good, good)
	buf.Write(make([]byte, 4096)) // a region reserved for a blob that never finished
	member(gap, gap)
	member(altered, bytes.ToUpper(altered))
	for name, b := range map[string][]byte{".lock": nil, "unfinished.tar": buf.Bytes()} {
		if err := os.WriteFile(filepath.Join(dead, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	s, err := Create(filepath.Join(dir, "out.tar"), Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		b    []byte
		want bool
	}{{good, true}, {gap, true}, {altered, false}, {[]byte("never written"), false}} {
		d := digest.FromBytes(tc.b)
		b, ok := s.Salvage(ctx, d, int64(len(tc.b)), "blobs/sha256/"+d.Encoded())
		if ok != tc.want || (ok && b.Size != int64(len(tc.b))) {
			t.Errorf("Salvage(%.10q) = %+v, %v; want %v", tc.b, b, ok, tc.want)
		}
		if ok {
			got, err := s.ReadBlob(d, 1<<20)
			if err != nil || !bytes.Equal(got, tc.b) {
				t.Errorf("salvaged blob reads back as %.10q (%v)", got, err)
			}
		}
	}
	if err := s.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead writer's staging directory is still there: %v", err)
	}
}
