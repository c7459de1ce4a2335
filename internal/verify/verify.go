// Package verify wraps a blob stream in a reader that hashes what passes through and checks
// the digest and size at EOF.
package verify

import (
	"hash"
	"io"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Reader checks size and digest of the stream it wraps. At EOF it returns a
// types.DigestMismatchError (matching types.ErrDigestMismatch) instead of io.EOF when the
// content does not match; reading past the expected size fails at once.
type Reader struct {
	r        io.Reader
	expected digest.Digest
	size     int64 // -1 when unknown
	hasher   hash.Hash
	n        int64
	done     bool
	err      error
	trusted  bool // the caller verifies the content; only count and check the size
}

// NewReader returns a verifying reader. expected may be "" (only hash, check nothing);
// size -1 means unknown. An expected digest with an unavailable algorithm is an error.
func NewReader(r io.Reader, expected digest.Digest, size int64) (*Reader, error) {
	alg := digest.Canonical
	if expected != "" {
		if err := expected.Validate(); err != nil {
			return nil, errors.Wrapf(err, "invalid digest %q", expected)
		}
		alg = expected.Algorithm()
	}
	return &Reader{r: r, expected: expected, size: size, hasher: alg.Hash()}, nil
}

// NewPutReader is the reader a destination stores a blob through. With trusted (the caller
// set types.PutBlobOptions.Verified) and a known expected digest, the caller checks the
// content as it streams and fails the read at EOF on a mismatch, so this reader only checks
// the size and reports expected as the digest without hashing again; otherwise it is
// NewReader.
func NewPutReader(r io.Reader, expected digest.Digest, size int64, trusted bool) (*Reader, error) {
	v, err := NewReader(r, expected, size)
	if err == nil && trusted && expected != "" {
		v.trusted = true
	}
	return v, err
}

// Read implements io.Reader.
func (v *Reader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	if !v.trusted {
		v.hasher.Write(p[:n])
	}
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = v.mismatch()
		return n, v.err
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			v.err = v.mismatch()
			return n, v.err
		}
		if v.expected != "" && v.Digest() != v.expected {
			v.err = v.mismatch()
			return n, v.err
		}
		v.done = true
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *Reader) mismatch() error {
	return types.DigestMismatchError{Expected: string(v.expected), Actual: string(v.Digest()), ExpectedSize: v.size, ActualSize: v.n}
}

// Digest returns the digest of what was read so far (for a trusted reader, the expected one).
func (v *Reader) Digest() digest.Digest {
	if v.trusted {
		return v.expected
	}
	alg := digest.Canonical
	if v.expected != "" {
		alg = v.expected.Algorithm()
	}
	return digest.NewDigest(alg, v.hasher)
}

// Size returns the number of bytes read so far.
func (v *Reader) Size() int64 { return v.n }

// Verified reports whether the stream reached EOF and matched.
func (v *Reader) Verified() bool { return v.done }
