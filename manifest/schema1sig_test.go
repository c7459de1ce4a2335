package manifest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// jwsSigner signs like libtrust: alg over protected "." base64url(payload), with the public
// key in the header as a JWK, or (x5c) as a self-signed certificate.
type jwsSigner struct {
	key crypto.Signer
	alg string
	x5c bool
	// mangle, when set, changes the signature block before it is written.
	mangle func(sig map[string]any)
}

var (
	testKeysOnce sync.Once
	testKeys     map[string]crypto.Signer
)

// keys returns one key of each kind, generated once per test binary.
func keys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	testKeysOnce.Do(func() {
		testKeys = map[string]crypto.Signer{}
		for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			testKeys[name] = k
		}
		for name, bits := range map[string]int{"RSA": 2048, "RSA-1024": 1024} {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			testKeys[name] = k
		}
	})
	return testKeys
}

// signSchema1JWS signs the unsigned document with each signer and returns the pretty JWS.
func signSchema1JWS(t *testing.T, unsigned []byte, signers ...jwsSigner) []byte {
	t.Helper()
	n := len(unsigned) - 2 // the payload ends in "\n}"
	protected := protectedHeader(`{"formatLength":` + itoa(n) + `,"formatTail":"Cn0","time":"2026-01-02T03:04:05Z"}`)
	input := []byte(protected + "." + base64.RawURLEncoding.EncodeToString(unsigned))
	var sigs []map[string]any
	for _, s := range signers {
		header := map[string]any{"alg": s.alg}
		if s.x5c {
			header["x5c"] = []string{base64.StdEncoding.EncodeToString(selfSigned(t, s.key))}
		} else {
			header["jwk"] = publicJWK(s.key.Public())
		}
		sig := map[string]any{"header": header, "signature": jwsSign(t, s.key, s.alg, input), "protected": protected}
		if s.mangle != nil {
			s.mangle(sig)
		}
		sigs = append(sigs, sig)
	}
	block, err := json.MarshalIndent(sigs, "   ", "   ")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(string(unsigned[:n]) + ",\n   \"signatures\": " + string(block) + "\n}")
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func jwsSign(t *testing.T, key crypto.Signer, alg string, input []byte) string {
	t.Helper()
	hash := map[byte]crypto.Hash{'2': crypto.SHA256, '3': crypto.SHA384, '5': crypto.SHA512}[alg[2]]
	h := hash.New()
	h.Write(input)
	sum := h.Sum(nil)
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum)
		if err != nil {
			t.Fatal(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, hash, sum); err != nil {
			t.Fatal(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}

func publicJWK(pub crypto.PublicKey) map[string]string {
	enc := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		b, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		return map[string]string{"kty": "EC", "crv": k.Curve.Params().Name, "x": enc(b[1 : 1+size]), "y": enc(b[1+size:])}
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	}
	panic("unknown key")
}

func selfSigned(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signer"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSchema1Signatures(t *testing.T) {
	t.Parallel()
	k := keys(t)
	unsigned := readTestdata(t, "schema1-unsigned.json")
	set := func(field string, v any) func(map[string]any) {
		return func(sig map[string]any) {
			if h, ok := sig["header"].(map[string]any); ok && field != "signature" {
				h[field] = v
				return
			}
			sig[field] = v
		}
	}
	cases := []struct {
		name    string
		blob    func(t *testing.T) []byte
		wantErr bool
	}{
		{"libtrust fixture", func(t *testing.T) []byte { return readTestdata(t, "schema1-libtrust-signed.json") }, false},
		{"ES256", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256"})
		}, false},
		{"ES384", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-384"], alg: "ES384"})
		}, false},
		{"ES512", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-521"], alg: "ES512"})
		}, false},
		{"RS256", func(t *testing.T) []byte { return signSchema1JWS(t, unsigned, jwsSigner{key: k["RSA"], alg: "RS256"}) }, false},
		{"x5c certificate", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["RSA"], alg: "RS256", x5c: true})
		}, false},
		{"two signatures", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256"}, jwsSigner{key: k["RSA"], alg: "RS512"})
		}, false},
		{"edited after signing (c/image fixture)", func(t *testing.T) []byte { return readTestdata(t, "schema1-signed.json") }, true},
		{"payload changed", func(t *testing.T) []byte {
			b := signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256"})
			return []byte(strings.Replace(string(b), "mitr/busybox", "mitr/busyb0x", 1))
		}, true},
		{"second signature bad", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256"},
				jwsSigner{key: k["P-384"], alg: "ES384", mangle: set("signature", jwsSign(t, k["P-384"], "ES384", []byte("other")))})
		}, true},
		{"alg does not fit the curve", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256", mangle: set("alg", "ES384")})
		}, true},
		{"unsupported alg", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256", mangle: set("alg", "HS256")})
		}, true},
		{"EC alg with an RSA key", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["RSA"], alg: "RS256", mangle: set("alg", "ES256")})
		}, true},
		{"RSA key too small", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["RSA-1024"], alg: "RS256"})
		}, true},
		{"no key", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256", mangle: func(sig map[string]any) { delete(sig["header"].(map[string]any), "jwk") }})
		}, true},
		{"unknown key type", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256", mangle: set("jwk", map[string]string{"kty": "oct", "k": "c2VjcmV0"})})
		}, true},
		{"point not on the curve", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256", mangle: set("jwk", map[string]string{"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ"})})
		}, true},
		{"signature not base64url", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256", mangle: set("signature", "%%")})
		}, true},
		{"truncated signature", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["P-256"], alg: "ES256", mangle: set("signature", "AAAA")})
		}, true},
		{"x5c not a certificate", func(t *testing.T) []byte {
			return signSchema1JWS(t, unsigned, jwsSigner{key: k["RSA"], alg: "RS256", x5c: true, mangle: set("x5c", []string{"AAAA"})})
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.blob(t)
			m, err := FromBlob(b, "")
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("FromBlob: %v", err)
				}
				if m.MIMEType() != DockerV2Schema1SignedMediaType {
					t.Errorf("MIME type %s", m.MIMEType())
				}
				if d, err := Digest(b); err != nil || d != schema1SignedDigest {
					t.Errorf("Digest = %s, %v; want the payload's %s", d, err, schema1SignedDigest)
				}
				return
			}
			if !errors.Is(err, types.ErrSignatureInvalid) || !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("FromBlob = %v; want ErrSignatureInvalid and ErrInvalidManifest", err)
			}
			if c := types.Classify(err); c != types.ClassVerification {
				t.Errorf("class %v, want verification", c)
			}
		})
	}
}
