package layout

import (
	"bytes"
	"encoding/json"
	"sync"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// encodedIndex is an index with the JSON encoding of each of its entries, when known (entries
// nil: encode them all). Writing index.json after adding an image then encodes only the new
// entry: a layout of 3,000 entries took 8 s of CPU in json.Marshal to write its index 3,000
// times.
type encodedIndex struct {
	idx     *imgspecv1.Index
	entries [][]byte // entries[i] encodes idx.Manifests[i]; nil when unknown
}

// indexEncodings keeps the entries' encodings of the indexes written last (the newest first),
// found by the index's pointer: readIndexShared returns the index written last while the file
// is what was written.
var indexEncodings struct {
	mu   sync.Mutex
	kept []encodedIndex
}

// keepEncoding remembers the encodings of e's entries (lastKept indexes in all).
func keepEncoding(e encodedIndex) {
	if e.entries == nil {
		return
	}
	indexEncodings.mu.Lock()
	defer indexEncodings.mu.Unlock()
	kept := []encodedIndex{e}
	for _, k := range indexEncodings.kept {
		if k.idx != e.idx && len(kept) < lastKept {
			kept = append(kept, k)
		}
	}
	indexEncodings.kept = kept
}

// lastKept is how many indexes' encodings are kept: a few layouts written side by side.
const lastKept = 4

// encodingOf returns idx with the encodings kept for it, if any.
func encodingOf(idx *imgspecv1.Index) encodedIndex {
	indexEncodings.mu.Lock()
	defer indexEncodings.mu.Unlock()
	for _, k := range indexEncodings.kept {
		if k.idx == idx {
			return k
		}
	}
	return encodedIndex{idx: idx}
}

// encodeIndex returns the JSON of idx, as json.Marshal writes it, taking entries[i] (when
// entries is not nil) as the encoding of idx.Manifests[i].
func encodeIndex(idx *imgspecv1.Index, entries [][]byte) ([]byte, error) {
	if entries == nil || len(entries) != len(idx.Manifests) {
		return json.Marshal(idx)
	}
	shell := *idx
	shell.Manifests = []imgspecv1.Descriptor{}
	b, err := json.Marshal(shell)
	if err != nil {
		return nil, err
	}
	// The key can only be the index's own: inside a JSON string its quotes would be escaped.
	key := []byte(`"manifests":[]`)
	at := bytes.Index(b, key)
	if at < 0 {
		return nil, errors.New("encoding index.json: no manifests array")
	}
	at += len(key) - 1
	n := len(b)
	for _, e := range entries {
		n += len(e) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, b[:at]...)
	for i, e := range entries {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, b[at:]...), nil
}

// indexUpdate adds images to an index, as UpdateIndex does one at a time, in one pass over the
// index however many are added.
type indexUpdate struct {
	base  encodedIndex
	names []string // the names added, in the order first added
	descs map[string]imgspecv1.Descriptor
}

func newIndexUpdate(base encodedIndex) *indexUpdate {
	return &indexUpdate{base: base, descs: map[string]imgspecv1.Descriptor{}}
}

// add adds desc as the image called name (see UpdateIndex); of two images added with one name,
// the later is kept.
func (u *indexUpdate) add(desc imgspecv1.Descriptor, name string) {
	desc.Annotations = nil
	if name != "" {
		desc.Annotations = map[string]string{imgspecv1.AnnotationRefName: name}
	}
	if _, ok := u.descs[name]; !ok {
		u.names = append(u.names, name)
	}
	u.descs[name] = desc
}

// result returns the index with the images added: each in the place of the first entry of
// its name, other entries of that name dropped, or appended in the order added; with the
// encodings of its entries (nil if one does not encode: encodeIndex then reports it).
func (u *indexUpdate) result() encodedIndex {
	if len(u.names) == 0 && u.base.entries != nil {
		return u.base
	}
	base := u.base.idx
	res := *base
	res.Manifests = make([]imgspecv1.Descriptor, 0, len(base.Manifests)+len(u.names))
	entries := make([][]byte, 0, cap(res.Manifests))
	encoded := true
	appendEntry := func(desc imgspecv1.Descriptor, enc []byte) {
		res.Manifests = append(res.Manifests, desc)
		if enc == nil && encoded {
			var err error
			enc, err = json.Marshal(desc)
			encoded = err == nil
		}
		entries = append(entries, enc)
	}
	placed := map[string]bool{}
	for i, e := range base.Manifests {
		name := RefName(e)
		desc, ok := u.descs[name]
		switch {
		case !ok:
			var enc []byte
			if u.base.entries != nil {
				enc = u.base.entries[i]
			}
			appendEntry(e, enc)
		case !placed[name]:
			placed[name] = true
			appendEntry(desc, nil)
		}
	}
	for _, name := range u.names {
		if !placed[name] {
			appendEntry(u.descs[name], nil)
		}
	}
	if !encoded {
		entries = nil
	}
	return encodedIndex{idx: &res, entries: entries}
}
