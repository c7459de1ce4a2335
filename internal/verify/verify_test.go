package verify

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

func TestReader(t *testing.T) {
	data := []byte("hello, blob")
	good := digest.FromBytes(data)
	other := digest.FromString("something else")
	cases := []struct {
		name     string
		expected digest.Digest
		size     int64
		wantErr  error
	}{
		{name: "digest and size match", expected: good, size: int64(len(data))},
		{name: "unknown size", expected: good, size: -1},
		{name: "no digest only hashes", expected: "", size: -1},
		{name: "wrong digest", expected: other, size: int64(len(data)), wantErr: types.ErrDigestMismatch},
		{name: "short", expected: good, size: int64(len(data)) + 1, wantErr: types.ErrDigestMismatch},
		{name: "long", expected: good, size: int64(len(data)) - 1, wantErr: types.ErrDigestMismatch},
		{name: "empty blob expected but got data", expected: digest.FromBytes(nil), size: 0, wantErr: types.ErrDigestMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vr, err := NewReader(iotest.OneByteReader(bytes.NewReader(data)), tc.expected, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(vr)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				var dm types.DigestMismatchError
				if !errors.As(err, &dm) || dm.Expected != string(tc.expected) {
					t.Errorf("mismatch error does not name the expected digest: %v", err)
				}
				if vr.Verified() {
					t.Error("Verified() true after a mismatch")
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("got %q, %v", got, err)
			}
			if !vr.Verified() || vr.Digest() != good || vr.Size() != int64(len(data)) {
				t.Errorf("verified=%v digest=%s size=%d", vr.Verified(), vr.Digest(), vr.Size())
			}
		})
	}
}

func TestReaderEmptyBlob(t *testing.T) {
	vr, err := NewReader(bytes.NewReader(nil), digest.FromBytes(nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(vr); err != nil || !vr.Verified() {
		t.Fatalf("empty blob: %v verified=%v", err, vr.Verified())
	}
}

func TestReaderPropagatesStreamError(t *testing.T) {
	boom := errors.New("boom")
	vr, err := NewReader(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom)), digest.FromString("abc"), -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(vr); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
}

func TestNewReaderRejectsBadDigest(t *testing.T) {
	for _, d := range []digest.Digest{"sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e", "nocolon"} {
		if _, err := NewReader(bytes.NewReader(nil), d, -1); err == nil {
			t.Errorf("digest %q accepted", d)
		}
	}
}

func TestPutReader(t *testing.T) {
	data := []byte("blob content")
	claimed := digest.FromString("what the caller verifies")
	cases := []struct {
		name       string
		expected   digest.Digest
		size       int64
		trusted    bool
		wantDigest digest.Digest
		wantErr    error
	}{
		{name: "trusted: not hashed again, the caller's digest is reported", expected: claimed, size: int64(len(data)), trusted: true, wantDigest: claimed},
		{name: "trusted: size still checked", expected: claimed, size: 3, trusted: true, wantErr: types.ErrDigestMismatch},
		{name: "trusted without a digest: hashed", size: -1, trusted: true, wantDigest: digest.FromBytes(data)},
		{name: "untrusted: checked", expected: claimed, size: -1, wantErr: types.ErrDigestMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vr, err := NewPutReader(bytes.NewReader(data), tc.expected, tc.size, tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(vr)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || vr.Digest() != tc.wantDigest {
				t.Fatalf("digest %s, %v; want %s", vr.Digest(), err, tc.wantDigest)
			}
		})
	}
}
