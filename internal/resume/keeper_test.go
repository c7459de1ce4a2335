//go:build unix

package resume

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/atomicfile"
	"github.com/imgcopy/imgcopy/types"
)

// TestKeeper: a Keeper takes part only for blobs worth keeping; a stage that breaks off
// leaves what arrived, which the next Keeper hands back as the prefix and continues; the
// finished blob leaves the store for its staged name; a partial download opened but never
// written is not left behind.
func TestKeeper(t *testing.T) {
	t.Parallel()
	if NewKeeper(nil, t.TempDir()) != nil {
		t.Fatal("a Keeper without resuming must be nil")
	}
	var none *Keeper
	if keeps, _, _ := none.Keeps(types.BlobInfo{Digest: testDigest(1), Size: MinSize}); keeps {
		t.Fatal("a nil Keeper keeps nothing")
	}
	opts := &types.ResumeOptions{Dir: t.TempDir()}
	stagingDir := t.TempDir()
	blob := bytes.Repeat([]byte("0123456789abcdef"), MinSize/16+1000)
	info := types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	name := func(d digest.Digest) string { return filepath.Join(stagingDir, d.Encoded()) }
	partial := filepath.Join(opts.Dir, blobsDir, "sha256-"+info.Digest.Encoded())

	k := NewKeeper(opts, stagingDir)
	if keeps, _, _ := k.Keeps(types.BlobInfo{Digest: testDigest(2), Size: MinSize - 1}); keeps {
		t.Error("a blob under MinSize is kept")
	}
	if keeps, _, _ := k.Keeps(types.BlobInfo{Digest: testDigest(3), Size: -1}); keeps {
		t.Error("a blob of unknown size is kept")
	}
	if _, _, ok, _ := k.Stage(atomicfile.NewSyncer(true), bytes.NewReader(blob), info, types.PutBlobOptions{}, 0, name); ok {
		t.Fatal("Stage took a blob Keeps was not asked about")
	}
	keeps, prefix, n := k.Keeps(info)
	if !keeps || prefix != nil || n != 0 {
		t.Fatalf("first Keeps: %v %v %d, want true, no prefix", keeps, prefix, n)
	}
	boom := errors.New("broke off")
	s := atomicfile.NewSyncer(true)
	_, _, ok, err := k.Stage(s, io.MultiReader(bytes.NewReader(blob[:1<<20]), iotest.ErrReader(boom)), info, types.PutBlobOptions{}, 0, name)
	if !ok || !errors.Is(err, boom) {
		t.Fatalf("interrupted Stage: %v %v", ok, err)
	}
	s.Close()
	k.Close()

	k = NewKeeper(opts, stagingDir)
	keeps, prefix, n = k.Keeps(info)
	if !keeps || prefix == nil || n != 1<<20 {
		t.Fatalf("second Keeps: %v %v %d, want the 1 MiB kept", keeps, prefix, n)
	}
	if got, err := io.ReadAll(prefix); err != nil || !bytes.Equal(got, blob[:1<<20]) {
		t.Fatalf("prefix: %d bytes, %v", len(got), err)
	}
	prefix.Close()
	var resumed int64
	s = atomicfile.NewSyncer(true)
	d, size, ok, err := k.Stage(s, bytes.NewReader(blob), info, types.PutBlobOptions{Resumed: func(n int64) { resumed = n }}, 0, name)
	if !ok || err != nil || d != info.Digest || size != info.Size || resumed != 1<<20 {
		t.Fatalf("second Stage: %s %d %v %v, resumed %d", d, size, ok, err, resumed)
	}
	if err := s.Sync(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(name(info.Digest)); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("staged blob: %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("the partial download is still in the store (%v)", err)
	}
	k.Close()

	// Asked about, then the copy ended before PutBlob: nothing is left.
	k = NewKeeper(opts, stagingDir)
	if keeps, _, _ := k.Keeps(info); !keeps {
		t.Fatal("third Keeps said no")
	}
	k.Close()
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("an empty partial download was left (%v)", err)
	}
}
