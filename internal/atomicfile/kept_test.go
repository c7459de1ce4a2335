package atomicfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// keptFile writes content to a new file in dir and returns it open for reading and writing.
func keptFile(t *testing.T, dir string, content []byte) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "partial"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestStageKeptBlob stages a blob into a file holding what an earlier run kept: matching kept
// bytes are not written again, differing ones are replaced, and the file is renamed to the
// blob's staged name, holding exactly the blob.
func TestStageKeptBlob(t *testing.T) {
	data := make([]byte, 300<<10) // several of matchKept's pieces
	fillRandom(data, 1)
	good := digest.FromBytes(data)
	altered := func(at int, b []byte) []byte {
		b = bytes.Clone(b)
		b[at] ^= 0xff
		return b
	}
	cases := []struct {
		name        string
		kept        []byte
		wantResumed int64
	}{
		{name: "nothing kept", kept: nil, wantResumed: 0},
		{name: "a correct prefix", kept: data[:200<<10], wantResumed: 200 << 10},
		{name: "the whole blob", kept: data, wantResumed: int64(len(data))},
		{name: "a prefix that differs", kept: altered(150<<10, data[:200<<10]), wantResumed: 150 << 10},
		{name: "more than the blob", kept: append(bytes.Clone(data), "trailing"...), wantResumed: int64(len(data))},
	}
	for _, durable := range []bool{true, false} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s, durable %v", tc.name, durable), func(t *testing.T) {
				t.Parallel()
				keepDir, stageDir := t.TempDir(), t.TempDir()
				f := keptFile(t, keepDir, tc.kept)
				s := NewSyncer(durable)
				d, n, resumed, err := s.StageKeptBlob(f, int64(len(tc.kept)), bytes.NewReader(data), good, -1, false, 0o644, func(d digest.Digest) string {
					return filepath.Join(stageDir, d.Encoded())
				})
				if err != nil || d != good || n != int64(len(data)) || resumed != tc.wantResumed {
					t.Fatalf("got %s %d resumed %d, %v; want %s %d resumed %d", d, n, resumed, err, good, len(data), tc.wantResumed)
				}
				if err := s.Sync(nil, nil); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(stageDir, good.Encoded()))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("staged file: %d bytes, %v; want the blob's %d", len(got), err, len(data))
				}
				if fi, err := os.Stat(filepath.Join(stageDir, good.Encoded())); err != nil || fi.Mode().Perm() != 0o644 {
					t.Errorf("staged file mode: %v %v, want 0644", fi, err)
				}
				if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the kept file is still at its old name (%v)", err)
				}
			})
		}
	}
}

// TestStageKeptBlobFailures checks what a failed stage leaves in the kept file: what arrived
// when the stream broke off, nothing when it did not verify; and that a verified blob whose
// rename the Syncer's Close abandons stays whole where it was.
func TestStageKeptBlobFailures(t *testing.T) {
	data := make([]byte, 200<<10)
	fillRandom(data, 3)
	good := digest.FromBytes(data)
	boom := errors.New("connection reset")
	cases := []struct {
		name     string
		kept     []byte
		r        io.Reader
		expected digest.Digest
		wantErr  error
		wantLeft []byte
	}{
		{name: "stream broke off", r: io.MultiReader(bytes.NewReader(data[:70000]), iotest.ErrReader(boom)), expected: good, wantErr: boom, wantLeft: data[:70000]},
		{name: "stream broke off after the kept part", kept: data[:1000], r: io.MultiReader(bytes.NewReader(data[:90000]), iotest.ErrReader(boom)), expected: good, wantErr: boom, wantLeft: data[:90000]},
		{name: "stream broke off within the kept part", kept: data[:100000], r: io.MultiReader(bytes.NewReader(data[:500]), iotest.ErrReader(boom)), expected: good, wantErr: boom, wantLeft: data[:100000]},
		{name: "did not verify", kept: data[:1000], r: bytes.NewReader(data), expected: digest.FromString("other"), wantErr: types.ErrDigestMismatch, wantLeft: []byte{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keepDir, stageDir := t.TempDir(), t.TempDir()
			f := keptFile(t, keepDir, tc.kept)
			defer f.Close()
			s := NewSyncer(true)
			_, _, _, err := s.StageKeptBlob(f, int64(len(tc.kept)), tc.r, tc.expected, -1, false, 0, func(d digest.Digest) string {
				return filepath.Join(stageDir, d.Encoded())
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			s.Close()
			left, rerr := os.ReadFile(f.Name())
			if rerr != nil || !bytes.Equal(left, tc.wantLeft) {
				t.Errorf("kept file holds %d bytes (%v), want %d", len(left), rerr, len(tc.wantLeft))
			}
			if entries, _ := os.ReadDir(stageDir); len(entries) != 0 {
				t.Errorf("a failed stage named %d files", len(entries))
			}
		})
	}

	t.Run("abandoned before its rename", func(t *testing.T) {
		keepDir, stageDir := t.TempDir(), t.TempDir()
		f := keptFile(t, keepDir, nil)
		s := NewSyncer(true)
		s.Close() // the destination gave up: renames not yet done are abandoned
		if _, _, _, err := s.StageKeptBlob(f, 0, bytes.NewReader(data), good, -1, false, 0, func(d digest.Digest) string {
			return filepath.Join(stageDir, d.Encoded())
		}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if left, err := os.ReadFile(f.Name()); err != nil || !bytes.Equal(left, data) {
			t.Errorf("kept file holds %d bytes (%v), want the whole blob", len(left), err)
		}
		if entries, _ := os.ReadDir(stageDir); len(entries) != 0 {
			t.Errorf("an abandoned stage named %d files", len(entries))
		}
		if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
			t.Errorf("the kept file is still open (write: %v)", err)
		}
	})
}

// fillRandom fills b with reproducible pseudo-random bytes.
func fillRandom(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
}

// A kept blob whose background data sync failed is not published, and not kept either.
func TestStageKeptBlobFailsWhenASyncBehindFailed(t *testing.T) {
	_ = recordWriteback(t)
	eio := errors.New("input/output error")
	defer ReplaceDataSyncForTest(func(*os.File) error { return eio })()
	keepDir, stageDir := t.TempDir(), t.TempDir()
	f := keptFile(t, keepDir, nil)
	s := NewSyncer(true)
	data := make([]byte, syncChunk+1)
	if _, _, _, err := s.StageKeptBlob(f, 0, bytes.NewReader(data), digest.FromBytes(data), int64(len(data)), false, 0, func(d digest.Digest) string {
		return filepath.Join(stageDir, d.Encoded())
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(nil, nil); !errors.Is(err, eio) {
		t.Fatalf("Sync: %v, want the failed data sync's error", err)
	}
	if entries, _ := os.ReadDir(stageDir); len(entries) != 0 {
		t.Errorf("published %d files after a failed sync", len(entries))
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Errorf("the kept file is still there after a failed sync (%v)", err)
	}
}
