package manifest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// schema1SignatureError is a signed schema1 manifest whose signatures do not verify, or do
// not sign the manifest they come with. It matches both types.ErrSignatureInvalid (so it is a
// verification failure) and ErrInvalidManifest.
type schema1SignatureError struct{ msg string }

func (e *schema1SignatureError) Error() string { return "invalid schema1 signature: " + e.msg }

// Is matches types.ErrSignatureInvalid and ErrInvalidManifest.
func (e *schema1SignatureError) Is(target error) bool {
	return target == types.ErrSignatureInvalid || target == ErrInvalidManifest
}

func signatureErrorf(format string, args ...any) error {
	return errors.WithStack(&schema1SignatureError{msg: fmt.Sprintf(format, args...)})
}

// jwsFullSignature is one libtrust "pretty" JWS signature: the key is in the unprotected
// header, as a JWK or as the first certificate of an x5c chain (standard base64 DER).
type jwsFullSignature struct {
	Header struct {
		JWK   json.RawMessage `json:"jwk"`
		Chain []string        `json:"x5c"`
		Alg   string          `json:"alg"`
	} `json:"header"`
	Signature string `json:"signature"`
	Protected string `json:"protected"`
}

// jwk is the part of a JSON Web Key (RFC 7517/7518) a libtrust signature carries.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// verifySchema1Signatures checks every signature of a signed schema1 manifest b over payload
// (b without its signatures, see schema1Payload), as libtrust and Docker did: the signing
// input is the protected header, ".", and the base64url payload; ES256/384/512 and
// RS256/384/512 are accepted. The keys themselves are not trusted or checked against
// anything: like Docker, this only proves that the manifest was not changed after signing.
func verifySchema1Signatures(b, payload []byte) error {
	var doc struct {
		Signatures []jwsFullSignature `json:"signatures"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return errors.Wrapf(ErrInvalidManifest, "decoding schema1 signatures: %v", err)
	}
	encoded := base64.RawURLEncoding.EncodeToString(payload)
	for i, sig := range doc.Signatures {
		if err := verifyJWS(sig, []byte(sig.Protected+"."+encoded)); err != nil {
			return signatureErrorf("signature %d: %v", i, err)
		}
	}
	return nil
}

// verifyJWS checks one signature over signingInput.
func verifyJWS(sig jwsFullSignature, signingInput []byte) error {
	key, err := jwsPublicKey(sig)
	if err != nil {
		return err
	}
	raw, err := decodeBase64URL(sig.Signature)
	if err != nil {
		return errors.Errorf("signature is not base64url: %v", err)
	}
	hash, ok := map[string]crypto.Hash{
		"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512,
		"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512,
	}[sig.Header.Alg]
	if !ok {
		return errors.Errorf("unsupported algorithm %q", sig.Header.Alg)
	}
	h := hash.New()
	h.Write(signingInput)
	sum := h.Sum(nil)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if sig.Header.Alg != ecAlgorithm(k.Curve) || len(raw) != 2*size {
			return errors.Errorf("%s signature of %d bytes does not fit a %s key", sig.Header.Alg, len(raw), k.Curve.Params().Name)
		}
		r, s := new(big.Int).SetBytes(raw[:size]), new(big.Int).SetBytes(raw[size:])
		if !ecdsa.Verify(k, sum, r, s) {
			return errors.New("the signature does not match the manifest: it was changed after signing")
		}
	case *rsa.PublicKey:
		if sig.Header.Alg[0] != 'R' {
			return errors.Errorf("%s signature with an RSA key", sig.Header.Alg)
		}
		if rsa.VerifyPKCS1v15(k, hash, sum, raw) != nil {
			return errors.New("the signature does not match the manifest: it was changed after signing")
		}
	default:
		return errors.Errorf("unsupported key type %T", key)
	}
	return nil
}

// ecAlgorithm returns the JWS algorithm libtrust uses with curve c.
func ecAlgorithm(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "ES256"
	case elliptic.P384():
		return "ES384"
	case elliptic.P521():
		return "ES512"
	}
	return ""
}

// jwsPublicKey returns the key of a signature: its x5c leaf certificate, else its JWK.
func jwsPublicKey(sig jwsFullSignature) (crypto.PublicKey, error) {
	if len(sig.Header.Chain) > 0 {
		der, err := base64.StdEncoding.DecodeString(sig.Header.Chain[0])
		if err != nil {
			return nil, errors.Errorf("x5c certificate is not base64: %v", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, errors.Errorf("x5c certificate: %v", err)
		}
		return cert.PublicKey, nil
	}
	if len(sig.Header.JWK) == 0 {
		return nil, errors.New("no key (jwk or x5c) in the signature header")
	}
	var k jwk
	if err := json.Unmarshal(sig.Header.JWK, &k); err != nil {
		return nil, errors.Errorf("decoding jwk: %v", err)
	}
	switch k.Kty {
	case "EC":
		return ecKey(k)
	case "RSA":
		return rsaKey(k)
	}
	return nil, errors.Errorf("unsupported jwk key type %q", k.Kty)
}

func ecKey(k jwk) (*ecdsa.PublicKey, error) {
	curve, ok := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[k.Crv]
	if !ok {
		return nil, errors.Errorf("unsupported jwk curve %q", k.Crv)
	}
	size := (curve.Params().BitSize + 7) / 8
	x, errX := decodeBase64URL(k.X)
	y, errY := decodeBase64URL(k.Y)
	if errX != nil || errY != nil || len(x) > size || len(y) > size {
		return nil, errors.Errorf("invalid %s jwk coordinates", k.Crv)
	}
	point := make([]byte, 1+2*size)
	point[0] = 4 // uncompressed
	copy(point[1+size-len(x):1+size], x)
	copy(point[1+2*size-len(y):], y)
	key, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, errors.Errorf("invalid %s jwk: %v", k.Crv, err)
	}
	return key, nil
}

// minRSABits refuses keys too small to mean anything (and too cheap to forge).
const minRSABits = 2048

func rsaKey(k jwk) (*rsa.PublicKey, error) {
	n, errN := decodeBase64URL(k.N)
	e, errE := decodeBase64URL(k.E)
	if errN != nil || errE != nil || len(e) == 0 || len(e) > 3 {
		return nil, errors.New("invalid RSA jwk")
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	key := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if key.N.BitLen() < minRSABits || exp < 3 || exp%2 == 0 {
		return nil, errors.Errorf("RSA jwk of %d bits with exponent %d", key.N.BitLen(), exp)
	}
	return key, nil
}
