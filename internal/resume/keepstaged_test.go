//go:build unix

package resume

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/types"
)

// bigBlob returns a blob of MinSize+extra bytes, distinct per seed.
func bigBlob(seed byte, extra int) []byte {
	b := bytes.Repeat([]byte{seed, 'k', 'e', 'p', 't', '-', 'b', 'l'}, (MinSize+extra)/8)
	return append(b, make([]byte, (MinSize+extra)%8)...)
}

// encodedDigest reads a staging file name that is a sha256 digest's encoded part.
func encodedDigest(name string) (digest.Digest, bool) {
	d := digest.NewDigestFromEncoded(digest.SHA256, name)
	return d, d.Validate() == nil
}

// TestKeepStagedThenResumed: the complete blobs a destination staged move into the store
// when it is closed without a commit (only those worth keeping, and never a temporary file;
// the store's directory is not even created when none is),
// and the next run's Keeper offers each whole, as a prefix as long as the blob, which Stage
// verifies without writing it again.
func TestKeepStagedThenResumed(t *testing.T) {
	t.Parallel()
	var none *Keeper
	if n, _ := none.KeepStaged(encodedDigest); n != 0 {
		t.Fatal("a nil Keeper (resuming off) kept something")
	}
	opts := &types.ResumeOptions{Dir: t.TempDir()}
	stagingDir := t.TempDir()
	blob, small := bigBlob(1, 12345), []byte("a config")
	info := types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	name := func(d digest.Digest) string { return filepath.Join(stagingDir, d.Encoded()) }
	tmp := filepath.Join(stagingDir, ".tmp-blob-123")
	for path, b := range map[string][]byte{name(info.Digest): blob, name(digest.FromBytes(small)): small, tmp: bigBlob(2, 0)} {
		must(t, os.WriteFile(path, b, 0o644))
	}
	must(t, os.Mkdir(name(digest.FromString("a directory")), 0o700))
	smallOnly := &types.ResumeOptions{Dir: filepath.Join(t.TempDir(), "resume")}
	if n, _ := NewKeeper(smallOnly, stagingDir).KeepStaged(func(name string) (digest.Digest, bool) {
		d, ok := encodedDigest(name)
		return d, ok && d != info.Digest
	}); n != 0 {
		t.Fatalf("kept %d blobs of those under MinSize", n)
	}
	if _, err := os.Stat(smallOnly.Dir); !os.IsNotExist(err) {
		t.Errorf("the resume directory was created with nothing to keep in it (%v)", err)
	}

	blobs, n := NewKeeper(opts, stagingDir).KeepStaged(encodedDigest)
	if blobs != 1 || n != info.Size {
		t.Fatalf("KeepStaged: %d blobs, %d bytes; want the one large blob, %d bytes", blobs, n, info.Size)
	}
	partial := filepath.Join(opts.Dir, blobsDir, partialName(info.Digest))
	if fi, err := os.Stat(partial); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the kept blob in the store: %v, %v; want mode 0600", fi, err)
	}
	for _, p := range []string{name(digest.FromBytes(small)), tmp, name(digest.FromString("a directory"))} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was taken: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Lstat(name(info.Digest)); !os.IsNotExist(err) {
		t.Errorf("the kept blob is still staged (%v)", err)
	}

	k := NewKeeper(opts, stagingDir) // the next run
	defer k.Close()
	keeps, prefix, kept := k.Keeps(info)
	if !keeps || prefix == nil || kept != info.Size {
		t.Fatalf("Keeps: %v, %v, %d; want the whole blob (%d bytes) as the prefix", keeps, prefix != nil, kept, info.Size)
	}
	if got, err := io.ReadAll(prefix); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("prefix: %d bytes, %v", len(got), err)
	}
	prefix.Close()
	s := atomicfile.NewSyncer(true)
	var resumed int64
	d, size, ok, err := k.Stage(s, bytes.NewReader(blob), info, types.PutBlobOptions{Resumed: func(n int64) { resumed = n }}, 0, name)
	if !ok || err != nil || d != info.Digest || size != info.Size || resumed != info.Size {
		t.Fatalf("Stage: %s %d %v %v, resumed %d; want the whole blob resumed", d, size, ok, err, resumed)
	}
	must(t, s.Sync(nil, nil))
	if got, err := os.ReadFile(name(info.Digest)); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("staged blob: %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("the partial download is still in the store (%v)", err)
	}
}

// TestKeepCompleteRefuses: KeepComplete leaves the staged file where it is, and the store as
// it was, for a blob that does not fit the store, one another process is fetching, a file
// that is a link or that others may write to, and a partial download that is a link.
func TestKeepCompleteRefuses(t *testing.T) {
	t.Parallel()
	blob := bigBlob(3, 0)
	d := digest.FromBytes(blob)
	const victimText = "a file outside the resume directory"
	for _, tc := range []struct {
		name    string
		maxSize int64
		plant   func(t *testing.T, s *Store, staged, target, victim string) func()
		wantErr bool
	}{
		{name: "larger than the store's size limit", maxSize: MinSize - 1},
		{name: "another process fetches the blob", plant: func(t *testing.T, s *Store, _, _, _ string) func() {
			p, err := s.OpenPartial(d, int64(len(blob)))
			if err != nil || p == nil {
				t.Fatalf("OpenPartial: %v, %v", p, err)
			}
			p.Record(blob[:100])
			return func() { p.Close(false) }
		}},
		{name: "a link", plant: func(t *testing.T, _ *Store, staged, _, _ string) func() {
			real := staged + "-real"
			must(t, os.Rename(staged, real))
			must(t, os.Symlink(real, staged))
			return nil
		}},
		{name: "others may write to it", wantErr: true, plant: func(t *testing.T, _ *Store, staged, _, _ string) func() {
			must(t, os.Chmod(staged, 0o666))
			return nil
		}},
		{name: "the partial download is a link", wantErr: true, plant: func(t *testing.T, _ *Store, _, target, victim string) func() {
			must(t, os.MkdirAll(filepath.Dir(target), 0o700))
			must(t, os.Symlink(victim, target))
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, 0, tc.maxSize)
			staged := filepath.Join(t.TempDir(), d.Encoded())
			target := filepath.Join(s.Dir(), blobsDir, partialName(d))
			victim := filepath.Join(t.TempDir(), "victim")
			must(t, os.WriteFile(victim, []byte(victimText), 0o600))
			must(t, os.WriteFile(staged, blob, 0o644))
			if tc.plant != nil {
				if done := tc.plant(t, s, staged, target, victim); done != nil {
					defer done()
				}
			}
			kept, err := s.KeepComplete(staged, d)
			if kept || (err != nil) != tc.wantErr {
				t.Fatalf("KeepComplete: %v, %v; want false and an error: %v", kept, err, tc.wantErr)
			}
			if got, err := os.ReadFile(staged); err != nil || !bytes.Equal(got, blob) {
				t.Errorf("the staged file: %d bytes, %v; want it left as it was", len(got), err)
			}
			if fi, err := os.Lstat(target); err == nil && fi.Mode().IsRegular() && fi.Size() >= int64(len(blob)) {
				t.Errorf("the store holds the whole blob")
			}
			if b, err := os.ReadFile(victim); err != nil || string(b) != victimText {
				t.Errorf("the file the link points to now holds %d bytes (%v)", len(b), err)
			}
		})
	}
}

// TestKeepCompleteReplacesAndPrunes: a complete blob replaces what an earlier run kept of it
// (fewer bytes), and makes room within the size limit by pruning the oldest partial download.
func TestKeepCompleteReplacesAndPrunes(t *testing.T) {
	t.Parallel()
	s := newStore(t, time.Hour, 3*MinSize)
	blob := bigBlob(4, MinSize)
	d := digest.FromBytes(blob)
	p, err := s.OpenPartial(d, int64(len(blob)))
	if err != nil || p == nil {
		t.Fatalf("OpenPartial: %v, %v", p, err)
	}
	p.Record(blob[:1<<20])
	must(t, p.Close(false))
	old := writeKept(t, s, 50, MinSize+1, time.Now().Add(-30*time.Minute))

	staged := filepath.Join(t.TempDir(), d.Encoded())
	must(t, os.WriteFile(staged, blob, 0o600))
	if kept, err := s.KeepComplete(staged, d); !kept || err != nil {
		t.Fatalf("KeepComplete: %v, %v", kept, err)
	}
	if got, err := os.ReadFile(filepath.Join(s.Dir(), blobsDir, partialName(d))); err != nil || !bytes.Equal(got, blob) {
		t.Errorf("the partial download: %d bytes, %v; want the whole blob", len(got), err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the oldest partial download was not pruned to make room (%v)", err)
	}
}
