package layout

import (
	"slices"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
)

// entryIndex finds the entries of an index.json that select an image (see selectImage) by
// maps instead of a scan: opening each of the n images of a layout scanned its n entries each
// time, and that scan was most of the time of listing a layout of 15,000 images.
type entryIndex struct {
	byDigest map[digest.Digest]int // the first entry with each digest
	exact    map[string][]int      // the entries that carry each name (ref.name or containerd's)
	byTag    map[string][]int      // the entries whose ref.name is a full reference with each tag
	images   []int                 // the entries that are not related to another image

	// Referrers (referrers.go): OCI indexes by their subject annotation and by their name, and
	// the unnamed manifests that may be oras's referrers.
	indexBySubject, indexByName map[string][]int
	unnamed                     []int

	// derived are the names entries have without a ref.name: the digest tags of cosign save's
	// signatures and attestations (cosign.go), by position.
	derived map[int]string
}

func newEntryIndex(idx *imgspecv1.Index) *entryIndex {
	x := &entryIndex{byDigest: map[digest.Digest]int{}, exact: map[string][]int{}, byTag: map[string][]int{},
		indexBySubject: map[string][]int{}, indexByName: map[string][]int{}}
	for i, e := range idx.Manifests {
		x.addReferrers(i, e)
		if _, ok := x.byDigest[e.Digest]; !ok {
			x.byDigest[e.Digest] = i
		}
		ref, full := RefName(e), e.Annotations[containerdNameAnnotation]
		if ref != "" {
			x.exact[ref] = append(x.exact[ref], i)
		}
		if full != "" && full != ref {
			x.exact[full] = append(x.exact[full], i)
		}
		if tag := tagOf(ref); tag != "" {
			x.byTag[tag] = append(x.byTag[tag], i)
		}
		if !IsRelatedEntry(e) {
			x.images = append(x.images, i)
		}
	}
	x.derived = cosignNames(idx)
	for i, n := range x.derived {
		x.exact[n] = append(x.exact[n], i)
	}
	for _, is := range x.exact {
		slices.Sort(is) // in index order, derived names too
	}
	return x
}

// name returns the name of entry i of the index x was built from: its ref.name, else a
// derived one (cosign.go), else "".
func (x *entryIndex) name(i int, e imgspecv1.Descriptor) string {
	if n := RefName(e); n != "" {
		return n
	}
	return x.derived[i]
}

// addReferrers records entry i, e, if it may hold referrers.
func (x *entryIndex) addReferrers(i int, e imgspecv1.Descriptor) {
	ref, subject := RefName(e), e.Annotations[AnnotationReferrerSubject]
	if e.MediaType == imgspecv1.MediaTypeImageIndex {
		x.indexBySubject[subject] = append(x.indexBySubject[subject], i)
		x.indexByName[ref] = append(x.indexByName[ref], i)
	}
	if ref == "" && subject == "" && (e.MediaType == imgspecv1.MediaTypeImageManifest || e.MediaType == imgspecv1.MediaTypeImageIndex) {
		x.unnamed = append(x.unnamed, i)
	}
}

// referrersIndexes returns the entries that are referrers indexes of subject (see
// isReferrersIndexOf), in index order.
func (x *entryIndex) referrersIndexes(idx *imgspecv1.Index, subject digest.Digest) []imgspecv1.Descriptor {
	is := append(slices.Clone(x.indexBySubject[subject.String()]), x.indexByName[manifest.FallbackTag(subject)]...)
	slices.Sort(is)
	return pickEntries(idx, slices.Compact(is))
}

// tagOf returns the tag that a bare-tag name matches a full reference by (see nameMatches):
// what follows the last colon, when it is a bare tag and no digest comes before it in the
// last path component; else "".
func tagOf(ref string) string {
	colon := strings.LastIndexByte(ref, ':')
	tag := ref[colon+1:]
	if colon < 0 || tag == "" || !isBareTag(tag) || strings.Contains(ref[strings.LastIndexByte(ref, '/')+1:colon], "@") {
		return ""
	}
	return tag
}

// find returns the entries that match a digest, else a name (exactly, or as a bare tag of a
// full reference), else the layout's images, in index order, as selectImage weighs them.
func (x *entryIndex) find(idx *imgspecv1.Index, name string, d digest.Digest) (exact, suffix []imgspecv1.Descriptor) {
	pick := func(is []int) []imgspecv1.Descriptor { return pickEntries(idx, is) }
	switch {
	case d != "":
		if i, ok := x.byDigest[d]; ok {
			return pick([]int{i}), nil
		}
		return nil, nil
	case name != "":
		if isBareTag(name) {
			suffix = pick(x.byTag[name])
		}
		return pick(x.exact[name]), suffix
	}
	return pick(x.images), nil
}

// pickEntries returns the entries of idx at the indexes is.
func pickEntries(idx *imgspecv1.Index, is []int) []imgspecv1.Descriptor {
	res := make([]imgspecv1.Descriptor, 0, len(is))
	for _, i := range is {
		res = append(res, idx.Manifests[i])
	}
	return res
}

// lastEntries is the entryIndex of the index.json readIndexShared parsed last, built when
// first needed.
var lastEntries struct {
	mu      sync.Mutex
	idx     *imgspecv1.Index
	entries *entryIndex
}

// entriesOf returns the entryIndex of idx: the one kept with the index.json parsed last
// (readIndexShared), built once, or a new one.
func entriesOf(idx *imgspecv1.Index) *entryIndex {
	if !lastIndex.Holds(idx) {
		return newEntryIndex(idx)
	}
	lastEntries.mu.Lock()
	defer lastEntries.mu.Unlock()
	if lastEntries.idx != idx {
		lastEntries.idx, lastEntries.entries = idx, newEntryIndex(idx)
	}
	return lastEntries.entries
}
