package tarfile

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/tarindex"
	"github.com/imgcopy/imgcopy/manifest"
)

// replaceMember returns ms with the member called name replaced (or appended).
func replaceMember(ms []member, m member) []member {
	out := []member{}
	done := false
	for _, x := range ms {
		if x.name == m.name {
			x, done = m, true
		}
		out = append(out, x)
	}
	if !done {
		out = append(out, m)
	}
	return out
}

func withoutMember(ms []member, name string) []member {
	out := []member{}
	for _, x := range ms {
		if x.name != name {
			out = append(out, x)
		}
	}
	return out
}

func TestHostileArchives(t *testing.T) {
	img := newTestImage(t, 2, "amd64")
	good := classicMembers(t, img, "x:1")
	cfgName := img.configDigest().Encoded() + ".json"
	layer0 := img.diffIDs[0].Encoded() + ".tar"
	item := func(config string, layers ...string) member {
		return member{name: "manifest.json", data: mustJSON(t, []ManifestItem{{Config: config, RepoTags: []string{"x:1"}, Layers: layers}})}
	}
	goodTar := buildTar(t, good)
	var items []ManifestItem
	for _, m := range good {
		if m.name == "manifest.json" {
			mustUnmarshal(t, m.data, &items)
		}
	}
	layers := items[0].Layers // the legacy <id>/layer.tar names
	cases := []struct {
		name    string
		archive []byte
		wantErr error  // errors.Is
		wantMsg string // substring
		also    error  // errors.Is too, when set: what a caller tests a damaged archive with
	}{
		{name: "dot-dot member", archive: buildTar(t, append(good, member{name: "../evil", data: []byte("x")})),
			wantErr: tarindex.ErrUnsafePath, wantMsg: `"../evil"`},
		{name: "absolute member", archive: buildTar(t, append(good, member{name: "/etc/passwd", data: []byte("x")})),
			wantErr: tarindex.ErrUnsafePath, wantMsg: `"/etc/passwd"`},
		{name: "symlink out of the archive", archive: buildTar(t, append(good, member{name: "a/layer.tar", link: "../../etc/shadow"})),
			wantErr: tarindex.ErrUnsafePath, wantMsg: "points outside the archive"},
		{name: "absolute symlink", archive: buildTar(t, append(good, member{name: "a/layer.tar", link: "/etc/shadow"})),
			wantErr: tarindex.ErrUnsafePath},
		{name: "duplicate member with other content", archive: buildTar(t, append(good, member{name: cfgName, data: append([]byte(" "), img.config...)})),
			wantErr: tarindex.ErrDuplicateEntry, wantMsg: cfgName},
		{name: "duplicate member as a symlink", archive: buildTar(t, append(good, member{name: cfgName, link: layer0})),
			wantErr: tarindex.ErrDuplicateEntry, wantMsg: cfgName},
		// The file exists, so it is not "not found" (exit 3, "check the path"): it is not a
		// docker archive, and an OCI layout in a tar gets told how to read it.
		{name: "manifest.json missing", archive: buildTar(t, withoutMember(good, "manifest.json")),
			wantErr: ErrInvalidArchive, wantMsg: "has no manifest.json"},
		{name: "OCI layout without manifest.json", archive: buildTar(t, []member{{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {name: "index.json", data: []byte(`{"schemaVersion":2,"manifests":[]}`)}}),
			wantErr: ErrInvalidArchive, wantMsg: "holds an OCI image layout: read it as oci-archive:"},
		{name: "manifest.json names a missing layer", archive: buildTar(t, replaceMember(good, item(cfgName, layer0, "missing.tar"))),
			wantErr: ErrInvalidArchive, wantMsg: `layer "missing.tar"`},
		{name: "manifest.json names a missing config", archive: buildTar(t, replaceMember(good, item("nope.json", layer0))),
			wantErr: ErrInvalidArchive, wantMsg: `config "nope.json"`},
		{name: "manifest.json names a file twice", archive: buildTar(t, replaceMember(good, item(layer0, layer0))),
			wantErr: ErrInvalidArchive, wantMsg: "both as config and as a layer"},
		{name: "manifest.json with dot-dot path", archive: buildTar(t, replaceMember(good, item(cfgName, "../x.tar", layer0))),
			wantErr: tarindex.ErrUnsafePath},
		{name: "manifest.json invalid JSON", archive: buildTar(t, replaceMember(good, member{name: "manifest.json", data: []byte(`[{"Config":`)})),
			wantErr: ErrInvalidArchive, wantMsg: "parsing manifest.json"},
		{name: "manifest.json empty list", archive: buildTar(t, replaceMember(good, member{name: "manifest.json", data: []byte(`[]`)})),
			wantErr: ErrInvalidArchive, wantMsg: "no images"},
		{name: "manifest.json oversized", archive: buildTar(t, replaceMember(good, member{name: "manifest.json", data: bytes.Repeat([]byte(" "), iolimits.MaxIndexFileSize+1)})),
			wantErr: iolimits.ErrTooLarge},
		{name: "config oversized", archive: buildTar(t, replaceMember(good, member{name: cfgName, data: bytes.Repeat([]byte(" "), iolimits.MaxConfigBodySize+1)})),
			wantErr: iolimits.ErrTooLarge},
		// Named after no digest, so that the name check does not come first.
		{name: "config invalid JSON", archive: buildTar(t, append(replaceMember(good, item("config.json", layers...)), member{name: "config.json", data: []byte("{")})),
			wantErr: manifest.ErrInvalidManifest},
		{name: "layer count differs from diff_ids", archive: buildTar(t, replaceMember(good, item(cfgName, layer0))),
			wantErr: ErrInvalidArchive, wantMsg: "config lists 2 layers, manifest.json 1"},
		{name: "invalid RepoTag", archive: buildTar(t, replaceMember(good, member{name: "manifest.json", data: []byte(`[{"Config":"` + cfgName + `","RepoTags":["UPPER:case"],"Layers":[]}]`)})),
			wantErr: ErrInvalidArchive, wantMsg: "invalid RepoTag"},
		{name: "truncated in a member", archive: goodTar[:len(goodTar)/2],
			wantErr: io.ErrUnexpectedEOF, also: ErrInvalidArchive},
		{name: "truncated in a header", archive: goodTar[:1024+100],
			wantErr: io.ErrUnexpectedEOF, also: ErrInvalidArchive},
		{name: "garbage", archive: bytes.Repeat([]byte("garbage!"), 256),
			wantErr: ErrInvalidArchive, wantMsg: "invalid tar header"},
		{name: "not a tar", archive: []byte("hello, this is not an archive at all"),
			wantErr: io.ErrUnexpectedEOF, also: ErrInvalidArchive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := openSource(t, writeArchive(t, tc.archive), nil, "", -1)
			if err == nil {
				src.Close()
				t.Fatal("hostile archive was accepted")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("want %v, got %v", tc.wantErr, err)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("want %v too, got %v", tc.also, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
		})
	}
}
