package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// nestedStore holds manifests by digest for ResolveInstance's fetcher.
type nestedStore map[digest.Digest][]byte

func (s nestedStore) add(t *testing.T, v any, mediaType string, platform *imgspecv1.Platform) imgspecv1.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(b)
	s[d] = b
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b)), Platform: platform}
}

func (s nestedStore) image(t *testing.T, arch string) imgspecv1.Descriptor {
	m := imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: digest.FromString(arch), Size: 2}, Layers: []imgspecv1.Descriptor{}}
	return s.add(t, m, imgspecv1.MediaTypeImageManifest, &imgspecv1.Platform{OS: "linux", Architecture: arch})
}

func (s nestedStore) index(t *testing.T, platform *imgspecv1.Platform, entries ...imgspecv1.Descriptor) imgspecv1.Descriptor {
	idx := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: entries}
	return s.add(t, idx, imgspecv1.MediaTypeImageIndex, platform)
}

func (s nestedStore) fetch(_ context.Context, d digest.Digest) ([]byte, string, error) {
	b, ok := s[d]
	if !ok {
		return nil, "", errors.Wrapf(types.ErrManifestNotFound, "manifest %s", d)
	}
	return b, "", nil
}

// TestResolveInstanceNested: an index whose entries are indexes (no platform, or one that
// must match) is searched depth first for the wanted image, as containerd does.
func TestResolveInstanceNested(t *testing.T) {
	t.Parallel()
	s := nestedStore{}
	amd, arm, s390x, ppc := s.image(t, "amd64"), s.image(t, "arm64"), s.image(t, "s390x"), s.image(t, "ppc64le")
	deep := s.index(t, nil, s.index(t, nil, s390x))
	ppcOnly := s.index(t, &imgspecv1.Platform{OS: "windows", Architecture: "ppc64le"}, ppc)
	top := s.index(t, nil, amd, s.index(t, nil, arm), ppcOnly, deep)
	idx, err := IndexFromBlob(s[top.Digest], "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		want    string
		digest  digest.Digest
		wantErr string
	}{
		{want: "linux/amd64", digest: amd.Digest},
		{want: "linux/arm64", digest: arm.Digest},
		{want: "linux/s390x", digest: s390x.Digest},
		// the nested index says windows/ppc64le: it is not searched for linux/ppc64le
		{want: "linux/ppc64le", wantErr: "available: linux/amd64, linux/arm64, linux/s390x: manifest not found"},
	}
	for _, tc := range cases {
		got, err := ResolveInstance(context.Background(), idx, plat(t, tc.want), s.fetch)
		if tc.wantErr != "" {
			if !errors.Is(err, types.ErrManifestNotFound) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ResolveInstance(%s) = %s, %v; want an error with %q", tc.want, got.Digest, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.Digest != tc.digest || !bytes.Equal(got.Manifest, s[tc.digest]) || got.MIMEType != imgspecv1.MediaTypeImageManifest {
			t.Errorf("ResolveInstance(%s) = %s %s, %v; want %s", tc.want, got.Digest, got.MIMEType, err, tc.digest)
		}
	}

	// A nested index that does not match its digest is refused, not parsed.
	bad := nestedStore{}
	for d, b := range s {
		bad[d] = b
	}
	inner := s.index(t, nil, s390x)
	bad[inner.Digest] = []byte(strings.Replace(string(s[inner.Digest]), "s390x", "s390y", 1))
	topBad := s.index(t, nil, amd, inner)
	idx, err = IndexFromBlob(s[topBad.Digest], "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveInstance(context.Background(), idx, plat(t, "linux/s390x"), bad.fetch); !errors.Is(err, types.ErrDigestMismatch) {
		t.Errorf("ResolveInstance with a tampered nested index = %v; want ErrDigestMismatch", err)
	}
}
