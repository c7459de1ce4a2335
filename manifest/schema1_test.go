package manifest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// swapHistory swaps two history entries, breaking the parent chain.
func swapHistory(d map[string]any, i, j int) {
	h := d["history"].([]any)
	h[i], h[j] = h[j], h[i]
}

// v1ID turns a short name into a valid 64-hex v1 layer ID.
func v1ID(s string) string { return strings.Repeat(s, 64/len(s)) }

// schema1WithIDs builds an unsigned schema1 manifest whose history has the given IDs (newest
// first), each the parent of the one before.
func schema1WithIDs(t testing.TB, ids ...string) []byte {
	t.Helper()
	m := Schema1{SchemaVersion: 1, Name: "x", Tag: "latest", Architecture: "amd64"}
	for i, id := range ids {
		c := map[string]any{"id": v1ID(id)}
		if i+1 < len(ids) {
			c["parent"] = v1ID(ids[i+1])
		}
		cb, _ := json.Marshal(c)
		m.History = append(m.History, Schema1History{V1Compatibility: string(cb)})
		m.FSLayers = append(m.FSLayers, Schema1FSLayer{BlobSum: digest.FromString(id)})
	}
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// protectedHeader encodes a libtrust protected header.
func protectedHeader(js string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(js))
}

// schema1WithProtected replaces the protected header of the signed fixture.
func schema1WithProtected(t testing.TB, protected string) []byte {
	t.Helper()
	const orig = "eyJmb3JtYXRMZW5ndGgiOjU0NzgsImZvcm1hdFRhaWwiOiJDbjAiLCJ0aW1lIjoiMjAxNi0wNC0xOFQyMDo1NDo0MloifQ"
	b := string(readTestdata(t, "schema1-signed.json"))
	if !strings.Contains(b, orig) {
		t.Fatal("fixture changed")
	}
	return []byte(strings.Replace(b, orig, protected, 1))
}

// signSchema1 appends extra JSON and a signature block to an unsigned schema1 document so
// that the signed payload is exactly the unsigned document.
func signSchema1(unsigned []byte, extra string, protected ...string) []byte {
	prefix := unsigned[:len(unsigned)-2] // strip "\n}"
	if len(protected) == 0 {
		protected = []string{protectedHeader(fmt.Sprintf(`{"formatLength":%d,"formatTail":"Cn0"}`, len(prefix)))}
	}
	var sigs []string
	for _, p := range protected {
		sigs = append(sigs, fmt.Sprintf(`{"header":{"alg":"ES256"},"signature":"c2ln","protected":%q}`, p))
	}
	return []byte(string(prefix) + extra + `,"signatures":[` + strings.Join(sigs, ",") + "]\n}")
}

// schema1SmuggledLayers signs the unsigned fixture but adds a second fsLayers field after
// the signed part: the digest would name the original layers while a parse sees others.
func schema1SmuggledLayers(t testing.TB) []byte {
	t.Helper()
	other := fmt.Sprintf(`{"blobSum":%q}`, digest.FromString("evil"))
	return signSchema1(readTestdata(t, "schema1-unsigned.json"), `,"fsLayers":[`+other+","+other+","+other+"]")
}

// schema1WithTwoSignatures signs the unsigned fixture twice with disagreeing headers.
func schema1WithTwoSignatures(t testing.TB) []byte {
	t.Helper()
	u := readTestdata(t, "schema1-unsigned.json")
	n := len(u) - 2
	return signSchema1(u, "",
		protectedHeader(fmt.Sprintf(`{"formatLength":%d,"formatTail":"Cn0"}`, n)),
		protectedHeader(fmt.Sprintf(`{"formatLength":%d,"formatTail":"fQ"}`, n+1)))
}

func TestDigest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file string
		want digest.Digest
	}{
		{"schema1-signed.json", schema1SignedDigest},
		{"schema1-unsigned.json", schema1SignedDigest}, // the unsigned fixture is the signed payload
		{"docker-schema2.json", digest.FromBytes(readTestdata(t, "docker-schema2.json"))},
		{"oci-index.json", digest.FromBytes(readTestdata(t, "oci-index.json"))},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			b := readTestdata(t, tc.file)
			got, err := Digest(b)
			if err != nil || got != tc.want {
				t.Fatalf("Digest = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	if d, err := Digest(nil); err != nil || d != digest.FromBytes(nil) {
		t.Errorf("Digest(nil) = %s, %v", d, err)
	}
	// A resigned document (our own signSchema1) has the payload digest too.
	resigned := signSchema1(readTestdata(t, "schema1-unsigned.json"), "")
	if d, err := Digest(resigned); err != nil || d != schema1SignedDigest {
		t.Errorf("Digest(resigned) = %s, %v", d, err)
	}
}

// TestCheckDigest checks CheckDigest and MatchesDigest, which share the digest computation.
func TestCheckDigest(t *testing.T) {
	t.Parallel()
	signed := readTestdata(t, "schema1-signed.json")
	s2 := readTestdata(t, "docker-schema2.json")
	cases := []struct {
		name       string
		blob       []byte
		d          digest.Digest
		size       int64
		wantErr    error  // nil: matches
		wantActual string // for a mismatch, the digest reported as actual
	}{
		{name: "schema1 payload digest", blob: signed, d: schema1SignedDigest, size: -1},
		{name: "schema1 sha512", blob: signed, d: schema1SignedDigestSHA512, size: -1},
		{name: "schema1 with its size", blob: signed, d: schema1SignedDigest, size: int64(len(signed))},
		{name: "schema1 raw bytes digest", blob: signed, d: digest.FromBytes(signed), size: -1, wantErr: types.ErrDigestMismatch, wantActual: schema1SignedDigest},
		{name: "schema2", blob: s2, d: digest.FromBytes(s2), size: int64(len(s2))},
		{name: "schema2 sha512", blob: s2, d: digest.SHA512.FromBytes(s2), size: -1},
		{name: "wrong size", blob: s2, d: digest.FromBytes(s2), size: int64(len(s2)) + 1, wantErr: types.ErrDigestMismatch, wantActual: digest.FromBytes(s2).String()},
		{name: "switched", blob: s2, d: schema1SignedDigest, size: -1, wantErr: types.ErrDigestMismatch, wantActual: digest.FromBytes(s2).String()},
		{name: "actual uses the expected algorithm", blob: s2, d: schema1SignedDigestSHA512, size: -1, wantErr: types.ErrDigestMismatch, wantActual: digest.SHA512.FromBytes(s2).String()},
		{name: "unknown algorithm", blob: s2, d: "md5:2872f31c5c1f62a694fbd20c1e85257c", size: -1, wantErr: digest.ErrDigestUnsupported},
		{name: "mangled", blob: s2, d: digest.FromBytes(s2) + "abc", size: -1, wantErr: digest.ErrDigestInvalidLength},
		{name: "empty digest", blob: s2, d: "", size: -1, wantErr: digest.ErrDigestInvalidFormat},
		{name: "broken JWS", blob: schema1WithProtected(t, "%%%"), d: schema1SignedDigest, size: -1, wantErr: ErrInvalidManifest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, merr := MatchesDigest(tc.blob, tc.d)
			if tc.size < 0 && (ok != (tc.wantErr == nil) || (merr != nil) != errors.Is(tc.wantErr, ErrInvalidManifest)) {
				t.Errorf("MatchesDigest = %v, %v", ok, merr)
			}
			err := CheckDigest(tc.blob, tc.d, tc.size)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckDigest = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("CheckDigest = %v, want %v", err, tc.wantErr)
			}
			var mm types.DigestMismatchError
			if errors.As(err, &mm) != (tc.wantActual != "") || mm.Actual != tc.wantActual {
				t.Errorf("CheckDigest = %#v, want a mismatch with actual %q", err, tc.wantActual)
			}
		})
	}
}

func TestDigestFor(t *testing.T) {
	t.Parallel()
	signed := readTestdata(t, "schema1-signed.json")
	raw := digest.FromBytes(signed)
	var sha512 digest.Digest = schema1SignedDigestSHA512
	cases := []struct {
		name     string
		instance *digest.Digest
		want     digest.Digest
		wantErr  error
	}{
		{name: "top level: the registry digest", want: schema1SignedDigest},
		{name: "instance named by its digest", instance: &sha512, want: schema1SignedDigestSHA512},
		{name: "instance named by another digest", instance: &raw, wantErr: types.ErrDigestMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DigestFor(signed, tc.instance)
			if got != tc.want || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Errorf("DigestFor = %s, %v; want %s, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSchema1LayerInfos(t *testing.T) {
	t.Parallel()
	m := mustFromBlob(t, "schema1-throwaway.json")
	var nonEmpty []string
	for _, l := range m.LayerInfos() {
		if l.Size != -1 || l.MediaType != DockerV2Schema2LayerMediaType {
			t.Errorf("layer %s: size %d, type %q", l.Digest, l.Size, l.MediaType)
		}
		if !l.EmptyLayer {
			nonEmpty = append(nonEmpty, l.Digest.Encoded()[:8])
		}
	}
	// Application order: the ADD of the base image first, the COPY last.
	want := "6a5a5368 1bbf5d58 8f5dc8a4 bbd6b22e 960e52ec"
	if got := strings.Join(nonEmpty, " "); got != want {
		t.Errorf("non-empty layers %s, want %s", got, want)
	}
}

func TestSchema1RepeatedEntries(t *testing.T) {
	t.Parallel()
	// Old Docker versions wrote the same layer twice in a row; Docker drops the repeat.
	m, err := FromBlob(schema1WithIDs(t, "a", "a", "b"), "")
	if err != nil {
		t.Fatal(err)
	}
	li := m.LayerInfos()
	if len(li) != 2 || li[0].Digest != digest.FromString("b") || li[1].Digest != digest.FromString("a") {
		t.Fatalf("LayerInfos = %+v", li)
	}
}

func TestSchema1Config(t *testing.T) {
	t.Parallel()
	m := mustFromBlob(t, "schema1-throwaway.json")
	diffIDs := []digest.Digest{digest.FromString("1"), digest.FromString("2"), digest.FromString("3"), digest.FromString("4"), digest.FromString("5")}
	b, err := Schema1Config(m, diffIDs)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Architecture, OS, Comment string
		History                   []schema1ConfigHistory
		ID                        *string `json:"id"`
		Throwaway                 *bool   `json:"throwaway"`
		Config                    struct{ Cmd []string }
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	got, err := ConfigDiffIDs(b)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(diffIDs) {
		t.Fatalf("ConfigDiffIDs = %v, %v", got, err)
	}
	if c.Architecture != "amd64" || c.OS != "linux" || c.Comment != "test comment" || c.ID != nil || c.Throwaway != nil ||
		len(c.Config.Cmd) != 1 || c.Config.Cmd[0] != "httpd-foreground" {
		t.Errorf("unexpected config %s", b)
	}
	if len(c.History) != 15 || !c.History[14].EmptyLayer || c.History[0].EmptyLayer ||
		c.History[14].CreatedBy != `/bin/sh -c #(nop)  CMD ["httpd-foreground"]` {
		t.Errorf("unexpected history %+v", c.History)
	}
	if _, err := Schema1Config(m, diffIDs[:4]); err == nil {
		t.Error("Schema1Config accepted 4 diff IDs for 5 layers")
	}
	if _, err := Schema1Config(mustFromBlob(t, "docker-schema2.json"), nil); !errors.Is(err, ErrUnsupportedMIMEType) {
		t.Errorf("Schema1Config(schema2) = %v", err)
	}
}

func TestSchema1ConfigDefaults(t *testing.T) {
	t.Parallel()
	// A history entry without architecture and os gets them from the manifest and "linux".
	m, err := FromBlob(schema1WithIDs(t, "a", "b"), "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Schema1Config(m, []digest.Digest{digest.FromString("1"), digest.FromString("2")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"architecture":"amd64"`) || !strings.Contains(string(b), `"os":"linux"`) {
		t.Errorf("config %s lacks architecture or os", b)
	}
}
