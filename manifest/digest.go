package manifest

import (
	_ "crypto/sha256" // registers the digest algorithms go-digest offers
	_ "crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// Digest returns the digest that names manifest b in a registry: the SHA-256 of b, except for
// a signed schema1 manifest, whose digest is over the JWS payload without the signatures.
func Digest(b []byte) (digest.Digest, error) {
	return digestWith(b, digest.SHA256)
}

// MatchesDigest reports whether d names manifest b, computing the digest with d's algorithm.
// A malformed d or one with an unavailable algorithm matches nothing (false, no error); an
// error means b is a signed schema1 manifest whose payload cannot be extracted.
func MatchesDigest(b []byte, d digest.Digest) (bool, error) {
	if d.Validate() != nil {
		return false, nil
	}
	actual, err := digestWith(b, d.Algorithm())
	if err != nil {
		return false, err
	}
	return actual == d, nil
}

// CheckDigest returns nil when d names manifest b (see MatchesDigest) and b is size bytes
// long (-1: any size, as when no descriptor gave one). Otherwise it returns a
// types.DigestMismatchError naming both digests (the actual one computed with d's algorithm)
// and sizes, the validation error of a malformed d, or ErrInvalidManifest for a signed
// schema1 manifest whose payload cannot be extracted. Callers wrap it with what was being
// read or written.
func CheckDigest(b []byte, d digest.Digest, size int64) error {
	if err := d.Validate(); err != nil {
		return errors.Wrapf(err, "invalid manifest digest %q", d)
	}
	actual, err := digestWith(b, d.Algorithm())
	if err != nil {
		return err
	}
	if actual != d || (size >= 0 && size != int64(len(b))) {
		return types.DigestMismatchError{Expected: d.String(), Actual: actual.String(), ExpectedSize: size, ActualSize: int64(len(b))}
	}
	return nil
}

// DigestFor returns the digest a destination stores manifest b under: *instance once
// CheckDigest found that it names b, or Digest(b) for a top-level manifest (instance nil).
func DigestFor(b []byte, instance *digest.Digest) (digest.Digest, error) {
	if instance == nil {
		return Digest(b)
	}
	if err := CheckDigest(b, *instance, -1); err != nil {
		return "", err
	}
	return *instance, nil
}

// digestWith computes the manifest digest of b with algorithm alg.
func digestWith(b []byte, alg digest.Algorithm) (digest.Digest, error) {
	if GuessMIMEType(b) == DockerV2Schema1SignedMediaType {
		payload, err := schema1Payload(b)
		if err != nil {
			return "", err
		}
		b = payload
	}
	return alg.FromBytes(b), nil
}

// jwsSignature is the part of a libtrust "pretty" JWS signature we need.
type jwsSignature struct {
	Protected string `json:"protected"`
}

// jwsFormat is the libtrust protected header: the signed payload is the first FormatLength
// bytes of the document followed by the base64url-decoded FormatTail.
type jwsFormat struct {
	FormatLength *float64 `json:"formatLength"`
	FormatTail   *string  `json:"formatTail"`
}

// schema1Payload returns the signed payload of a libtrust pretty JWS (the manifest without
// its "signatures"), checking that all signatures agree on it.
func schema1Payload(b []byte) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := unmarshalStrict(b, &doc, "signed schema1 manifest"); err != nil {
		return nil, err
	}
	var sigs []jwsSignature
	if err := unmarshalStrict(doc["signatures"], &sigs, "schema1 signatures"); err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, errors.Wrap(ErrInvalidManifest, "signed schema1 manifest has no signatures")
	}
	length, tail, err := jwsFormatOf(sigs[0].Protected)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(sigs); i++ {
		l, t, err := jwsFormatOf(sigs[i].Protected)
		if err != nil {
			return nil, err
		}
		if l != length || t != tail {
			return nil, signatureErrorf("the signatures sign different payloads")
		}
	}
	if length > len(b) {
		return nil, signatureErrorf("formatLength %d beyond %d bytes", length, len(b))
	}
	payload := make([]byte, 0, length+len(tail))
	return append(append(payload, b[:length]...), tail...), nil
}

// jwsFormatOf decodes a protected header into formatLength and the decoded formatTail.
func jwsFormatOf(protected string) (int, string, error) {
	header, err := decodeBase64URL(protected)
	if err != nil {
		return 0, "", errors.Wrapf(ErrInvalidManifest, "decoding schema1 protected header: %v", err)
	}
	var f jwsFormat
	if err := unmarshalStrict(header, &f, "schema1 protected header"); err != nil {
		return 0, "", err
	}
	if f.FormatLength == nil || f.FormatTail == nil {
		return 0, "", errors.Wrap(ErrInvalidManifest, "schema1 protected header lacks formatLength or formatTail")
	}
	l := *f.FormatLength
	if l < 0 || l != math.Trunc(l) || l > math.MaxInt32 {
		return 0, "", errors.Wrapf(ErrInvalidManifest, "schema1 formatLength %v", l)
	}
	tail, err := decodeBase64URL(*f.FormatTail)
	if err != nil {
		return 0, "", errors.Wrapf(ErrInvalidManifest, "decoding schema1 formatTail: %v", err)
	}
	return int(l), string(tail), nil
}

// decodeBase64URL decodes JOSE base64url, with or without padding.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
