package boltdb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// validFile returns the bytes of a cache file with branch pages, overflow pages and inline
// buckets.
func validFile(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cache.db")
	c := Open(path).(*cache)
	for i := range 32 { // 32 pairs fill more than one 4 KiB leaf page: a branch page appears
		c.RecordDigestUncompressedPair(dg(i), dg(1000+i%4))
	}
	for i := range 6 {
		c.RecordKnownLocation("docker", scope, dg(i%3), loc(i))
	}
	long := types.BICLocationReference{Opaque: strings.Repeat("x", 4000)} // needs an overflow page
	c.RecordKnownLocation("docker", scope, dg(1), long)
	mustFlush(t, c)
	if c.fallback != nil {
		t.Fatal("fell back to memory")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidateFile(t *testing.T) {
	t.Parallel()
	good := validFile(t)
	meta, err := chooseMeta(good)
	if err != nil {
		t.Fatal(err)
	}
	rootOff := meta.root * meta.pageSize
	cases := []struct {
		name    string
		mutate  func(b []byte) []byte
		wantErr bool
	}{
		{name: "valid", mutate: func(b []byte) []byte { return b }},
		{name: "truncated below high water mark", mutate: func(b []byte) []byte { return b[:len(b)/2] }, wantErr: true},
		{name: "both meta pages zeroed", mutate: func(b []byte) []byte {
			clear(b[:2*meta.pageSize])
			return b
		}, wantErr: true},
		{name: "root page id", mutate: func(b []byte) []byte {
			ne.PutUint64(b[rootOff:], 12345)
			return b
		}, wantErr: true},
		{name: "element count", mutate: func(b []byte) []byte {
			ne.PutUint16(b[rootOff+10:], 0xFFFE)
			return b
		}, wantErr: true},
		{name: "huge value size", mutate: func(b []byte) []byte {
			ne.PutUint32(b[rootOff+pageHeaderSize+12:], 0x67676767)
			return b
		}, wantErr: true},
		{name: "overflow past the file", mutate: func(b []byte) []byte {
			ne.PutUint32(b[rootOff+12:], 1<<20)
			return b
		}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := validateFile(tc.mutate(append([]byte(nil), good...)))
			if tc.wantErr != (err != nil) {
				t.Fatalf("got %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, errCorrupt) {
				t.Fatalf("want errCorrupt, got %v", err)
			}
		})
	}
}

// TestValidateEveryWord flips each 32-bit word of the used part of a valid file in turn: the validator must
// never panic, whatever it decides.
func TestValidateEveryWord(t *testing.T) {
	t.Parallel()
	good := validFile(t)
	meta, err := chooseMeta(good)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), good...)
	used := int(meta.hwm * meta.pageSize) // the rest of the file is preallocated, unused space
	rejected := 0
	for off := 0; off+4 <= used; off += 4 {
		orig := ne.Uint32(b[off:])
		ne.PutUint32(b[off:], orig^0x67676767)
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("validateFile panicked with word %d flipped: %v", off/4, r)
				}
			}()
			if validateFile(b) != nil {
				rejected++
			}
		}()
		ne.PutUint32(b[off:], orig)
	}
	t.Logf("%d of %d mutations rejected", rejected, used/4)
}

// FuzzValidateFile: the validator never panics and never accepts a file whose meta pages bbolt
// would reject.
func FuzzValidateFile(f *testing.F) {
	f.Add(validFile(f))
	f.Add([]byte{})
	f.Add([]byte("not a bolt database"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := validateFile(b); err == nil {
			if _, err := chooseMeta(b); err != nil {
				t.Fatalf("accepted a file without a valid meta page: %v", err)
			}
		}
	})
}

// TestValidFileHasBranchPages guards the fixture: it must exercise branch, leaf and overflow
// pages, or TestValidateEveryWord proves little.
func TestValidFileHasBranchPages(t *testing.T) {
	t.Parallel()
	b := validFile(t)
	meta, err := chooseMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	var branch, overflow bool
	for id := uint64(2); id < meta.hwm; id++ {
		hdr := b[id*meta.pageSize:]
		branch = branch || ne.Uint16(hdr[8:]) == branchPageFlag
		overflow = overflow || (ne.Uint16(hdr[8:]) == leafPageFlag && ne.Uint32(hdr[12:]) > 0)
	}
	if !branch || !overflow {
		t.Fatalf("fixture has branch pages %v, overflow pages %v", branch, overflow)
	}
}
