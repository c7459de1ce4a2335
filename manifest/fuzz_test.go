package manifest

import (
	"bytes"
	"slices"
	"testing"

	"github.com/imgcopy/imgcopy/types"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// fuzzMIMETypes are the MIME types the fuzz targets pass along with the blob.
var fuzzMIMETypes = append([]string{"", "application/json"}, SupportedMIMETypes()...)

// addSeeds adds every testdata manifest, with each MIME type index, to f's corpus.
func addSeeds(f *testing.F) {
	for _, name := range allTestdata {
		b := readTestdata(f, name)
		for i := range fuzzMIMETypes {
			f.Add(b, uint8(i))
		}
	}
}

func FuzzFromBlob(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte, mt uint8) {
		m, err := FromBlob(b, fuzzMIMETypes[int(mt)%len(fuzzMIMETypes)])
		if err != nil {
			return
		}
		s, err := m.Serialize()
		if err != nil || !bytes.Equal(s, b) {
			t.Fatalf("Serialize of an unchanged manifest differs (%v)", err)
		}
		_ = m.LayerInfos()
		_ = m.ConfigInfo()
		if _, err := Digest(b); err != nil {
			t.Fatalf("Digest failed on a manifest FromBlob accepted: %v", err)
		}
	})
}

func FuzzIndexFromBlob(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte, mt uint8) {
		idx, err := IndexFromBlob(b, fuzzMIMETypes[int(mt)%len(fuzzMIMETypes)])
		if err != nil {
			return
		}
		s, err := idx.Serialize()
		if err != nil || !bytes.Equal(s, b) {
			t.Fatalf("Serialize of an unchanged index differs (%v)", err)
		}
		_, _ = ChooseInstance(idx, types.Platform{OS: "linux", Architecture: "arm"})
		for _, to := range []string{DockerV2ListMediaType, imgspecv1.MediaTypeImageIndex} {
			out, err := UpdateIndex(idx, IndexUpdateOptions{MIMEType: to})
			if err == nil && len(out.Instances()) != len(idx.Instances()) {
				t.Fatalf("UpdateIndex to %s changed the number of instances", to)
			}
		}
	})
}

func FuzzGuessMIMEType(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte, _ uint8) {
		if mt := GuessMIMEType(b); mt != "" && !slices.Contains(SupportedMIMETypes(), mt) {
			t.Fatalf("GuessMIMEType returned unsupported %q", mt)
		}
	})
}

func FuzzDigest(f *testing.F) {
	addSeeds(f)
	f.Add(signSchema1(readTestdata(f, "schema1-unsigned.json"), ""), uint8(0))
	f.Add(schema1WithTwoSignatures(f), uint8(0))
	f.Add(schema1SmuggledLayers(f), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, _ uint8) {
		d, err := Digest(b)
		if err != nil {
			return
		}
		if ok, err := MatchesDigest(b, d); !ok || err != nil {
			t.Fatalf("MatchesDigest(b, Digest(b)) = %v, %v", ok, err)
		}
		if ok, err := MatchesDigest(b, digest.Digest("sha512:"+d.Encoded())); ok || err != nil {
			t.Fatalf("MatchesDigest with a wrong digest = %v, %v", ok, err)
		}
	})
}

func FuzzUpdateRoundTrip(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte, mt uint8) {
		m, err := FromBlob(b, fuzzMIMETypes[int(mt)%len(fuzzMIMETypes)])
		if err != nil {
			return
		}
		opts := roundTripOptions(m)
		for _, to := range []string{DockerV2Schema2MediaType, imgspecv1.MediaTypeImageManifest} {
			opts.MIMEType = to
			out, err := Update(m, opts)
			if err != nil {
				continue
			}
			checkRoundTrip(t, m, out)
		}
	})
}

// roundTripOptions returns the options a schema1 conversion needs (a config and layer
// sizes); for other formats none.
func roundTripOptions(m Manifest) UpdateOptions {
	if m.ConfigInfo().Digest != "" {
		return UpdateOptions{}
	}
	config := types.BlobInfo{Digest: digest.FromString("config"), Size: 6}
	infos := make([]types.BlobInfo, 0, len(m.LayerInfos()))
	for _, l := range m.LayerInfos() {
		l.Size = 1
		infos = append(infos, l.BlobInfo)
	}
	return UpdateOptions{ConfigInfo: &config, LayerInfos: infos}
}

// checkRoundTrip checks that out re-parses and, when m is schema2 or OCI, converts back to
// m's type with the same config and layers.
func checkRoundTrip(t *testing.T, m, out Manifest) {
	b, err := out.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromBlob(b, out.MIMEType()); err != nil {
		t.Fatalf("Update output does not parse: %v\n%s", err, b)
	}
	if ct := m.ConfigInfo().MediaType; ct != DockerV2Schema2ConfigMediaType && ct != imgspecv1.MediaTypeImageConfig {
		return // schema1 (no config) or a non-image config that only its own format can hold
	}
	back, err := Update(out, UpdateOptions{MIMEType: m.MIMEType()})
	if err != nil {
		t.Fatalf("converting back to %s: %v", m.MIMEType(), err)
	}
	if back.ConfigInfo().Digest != m.ConfigInfo().Digest || !slices.Equal(layerDigests(back), layerDigests(m)) {
		t.Fatalf("round trip changed config or layers")
	}
}
