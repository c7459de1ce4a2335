package layout

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/types"
)

// TestListIndexUsesContainerdNames lists an index.json as docker save (Docker 25+), containerd
// and regctl image export write it: ref.name a bare tag, the full name beside it in
// io.containerd.image.name. The images are listed under their full names, each selecting
// its own entry, rather than under one tag that every image shares.
func TestListIndexUsesContainerdNames(t *testing.T) {
	t.Parallel()
	entry := func(content, refName, full string) imgspecv1.Descriptor {
		a := map[string]string{}
		if refName != "" {
			a[imgspecv1.AnnotationRefName] = refName
		}
		if full != "" {
			a[containerdNameAnnotation] = full
		}
		return imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString(content), Size: 2, Annotations: a}
	}
	idx := &imgspecv1.Index{Manifests: []imgspecv1.Descriptor{
		entry("app", "latest", "docker.io/library/app:latest"),
		entry("tool", "latest", "registry.example:5000/team/tool:latest"),
		entry("unnamed", "", "docker.io/library/web:2"),
		entry("mismatch", "v1", "docker.io/library/db:v2"), // another tag: not this entry's name
		entry("digested", "", "docker.io/library/x@"+digest.FromString("x").String()),
		entry("skopeo", "v3", ""),
	}}
	newRef := func(name string, d digest.Digest) (types.ImageReference, error) {
		return newReference("/l", name, d), nil
	}
	listed, err := ListIndex(idx, "/l", "", "", newRef)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ stored, name, ref string }{
		{"docker.io/library/app:latest", "docker.io/library/app:latest", "oci:/l:docker.io/library/app:latest"},
		{"registry.example:5000/team/tool:latest", "registry.example:5000/team/tool:latest", "oci:/l:registry.example:5000/team/tool:latest"},
		{"docker.io/library/web:2", "docker.io/library/web:2", "oci:/l:docker.io/library/web:2"},
		{"v1", "", "oci:/l:v1"},
		{"", "", "oci:/l@" + digest.FromString("digested").String()},
		{"v3", "", "oci:/l:v3"},
	}
	if len(listed) != len(want) {
		t.Fatalf("listed %d images, want %d: %+v", len(listed), len(want), listed)
	}
	for i, w := range want {
		li := listed[i]
		name := ""
		if li.Name != nil {
			name = li.Name.String()
		}
		if li.StoredName != w.stored || name != w.name || types.ImageName(li.Ref) != w.ref {
			t.Errorf("entry %d: stored %q, name %q, ref %s; want %q, %q, %s", i, li.StoredName, name, types.ImageName(li.Ref), w.stored, w.name, w.ref)
		}
	}
}
