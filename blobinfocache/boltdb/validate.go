package boltdb

import (
	"encoding/binary"
	"hash/fnv"

	"github.com/pkg/errors"
)

// bbolt trusts the pages of its file: a damaged page (a torn write, bit rot, a hostile file)
// can make it read past the file, allocate gigabytes or loop, and its own Tx.Check has the same
// weaknesses. Before a handle first uses a file, validateFile walks the b-tree that bbolt would
// use, bounds-checking every page and element, so that such a file is given up with a warning
// instead. The layout constants mirror go.etcd.io/bbolt/internal/common.

const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elementSize      = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64
	metaSize         = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
	maxValidateLen = 512 << 20 // far above what the caps let the cache grow to
)

// errCorrupt is returned (wrapped with the detail) for a file bbolt must not open.
var errCorrupt = errors.New("cache file is damaged")

var ne = binary.NativeEndian // bbolt writes its structures in native byte order

// boltMeta is the part of a meta page the walk needs.
type boltMeta struct {
	pageSize       uint64
	root, freelist uint64
	hwm, txid      uint64
}

// parseMeta reads the meta page at off; ok is false unless magic, version and checksum match.
func parseMeta(b []byte, off uint64) (boltMeta, bool) {
	start := off + pageHeaderSize
	if start+metaSize > uint64(len(b)) {
		return boltMeta{}, false
	}
	m := b[start : start+metaSize]
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if ne.Uint32(m[0:]) != boltMagic || ne.Uint32(m[4:]) != boltVersion || ne.Uint64(m[56:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		hwm:      ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, true
}

// chooseMeta picks the meta page bbolt would use: the higher txid of the two if it is valid,
// else the other one.
func chooseMeta(b []byte) (boltMeta, error) {
	m0, ok0 := parseMeta(b, 0)
	pageSize := m0.pageSize
	if !ok0 { // like bbolt, look for the second meta page at the usual page sizes
		for ps := uint64(1024); ps <= 64<<10; ps *= 2 {
			if m1, ok := parseMeta(b, ps); ok && m1.pageSize == ps {
				pageSize = ps
				break
			}
		}
	}
	if pageSize < 1024 || pageSize > 64<<10 || pageSize&(pageSize-1) != 0 {
		return boltMeta{}, errors.Wrap(errCorrupt, "no valid meta page")
	}
	m1, ok1 := parseMeta(b, pageSize)
	a, aok, c, cok := m0, ok0, m1, ok1
	if m1.txid > m0.txid {
		a, aok, c, cok = m1, ok1, m0, ok0
	}
	switch {
	case aok && a.pageSize == pageSize:
		return a, nil
	case cok && c.pageSize == pageSize:
		return c, nil
	}
	return boltMeta{}, errors.Wrap(errCorrupt, "no valid meta page")
}

// walker validates the pages reachable from one meta page.
type walker struct {
	b     []byte
	meta  boltMeta
	seen  []bool   // by page id: claimed by a reference (with its overflow pages)
	freed []uint64 // the freelist's entries
}

// validateFile checks the bbolt file contents b; see the comment at the top of this file.
func validateFile(b []byte) error {
	if len(b) > maxValidateLen {
		return errors.Wrapf(errCorrupt, "%d bytes is more than a cache file grows to", len(b))
	}
	meta, err := chooseMeta(b)
	if err != nil {
		return err
	}
	if meta.hwm < 2 || meta.hwm > uint64(len(b))/meta.pageSize {
		return errors.Wrapf(errCorrupt, "high water mark %d outside a %d-byte file", meta.hwm, len(b))
	}
	w := &walker{b: b, meta: meta, seen: make([]bool, meta.hwm)} // hwm is bounded by the file size
	w.seen[0], w.seen[1] = true, true
	if meta.freelist != noFreelist {
		if err := w.freelist(meta.freelist); err != nil {
			return err
		}
	}
	if err := w.page(meta.root, 0); err != nil {
		return err
	}
	for _, f := range w.freed {
		if w.seen[f] && f != meta.freelist {
			return errors.Wrapf(errCorrupt, "page %d is both free and in use", f)
		}
	}
	return nil
}

// claim returns page id's bytes (with its overflow pages) after checking bounds, type flags and
// that no other reference claimed them.
func (w *walker) claim(id uint64, wantFlags ...uint16) ([]byte, error) {
	if id < 2 || id >= w.meta.hwm {
		return nil, errors.Wrapf(errCorrupt, "page %d outside [2, %d)", id, w.meta.hwm)
	}
	hdr := w.b[id*w.meta.pageSize:]
	overflow := uint64(ne.Uint32(hdr[12:]))
	if ne.Uint64(hdr) != id || overflow >= w.meta.hwm-id {
		return nil, errors.Wrapf(errCorrupt, "page %d header", id)
	}
	flags := ne.Uint16(hdr[8:])
	okFlags := false
	for _, f := range wantFlags {
		okFlags = okFlags || flags == f
	}
	if !okFlags {
		return nil, errors.Wrapf(errCorrupt, "page %d has type %#x", id, flags)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return nil, errors.Wrapf(errCorrupt, "page %d referenced twice", i)
		}
		w.seen[i] = true
	}
	return hdr[:(overflow+1)*w.meta.pageSize], nil
}

// freelist checks the freelist page: every listed id inside the file and not in use.
func (w *walker) freelist(id uint64) error {
	p, err := w.claim(id, freelistPageFlag)
	if err != nil {
		return err
	}
	count, start := uint64(ne.Uint16(p[10:])), uint64(pageHeaderSize)
	if count == 0xFFFF { // the real count is in the first element
		if uint64(len(p)) < start+8 {
			return errors.Wrap(errCorrupt, "freelist header")
		}
		count, start = ne.Uint64(p[start:]), start+8
	}
	if count > (uint64(len(p))-start)/8 {
		return errors.Wrapf(errCorrupt, "freelist of %d entries overflows its page", count)
	}
	for i := range count {
		f := ne.Uint64(p[start+8*i:])
		if f < 2 || f >= w.meta.hwm {
			return errors.Wrapf(errCorrupt, "freelist entry %d outside the file", f)
		}
		w.freed = append(w.freed, f)
	}
	return nil
}

// page validates a branch or leaf page and everything below it; depth bounds the recursion
// even for a (rejected anyway) cyclic structure.
func (w *walker) page(id uint64, depth int) error {
	if depth > 64 {
		return errors.Wrap(errCorrupt, "b-tree too deep")
	}
	p, err := w.claim(id, branchPageFlag, leafPageFlag)
	if err != nil {
		return err
	}
	return w.elements(p, ne.Uint16(p[8:]), depth)
}

// elements checks the elements of a page image p (a file page or an inline bucket page).
func (w *walker) elements(p []byte, flags uint16, depth int) error {
	count := uint64(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > uint64(len(p)) {
		return errors.Wrapf(errCorrupt, "%d elements overflow their page", count)
	}
	for i := range count {
		off := pageHeaderSize + i*elementSize
		e := p[off : off+elementSize]
		if flags == branchPageFlag {
			if !w.fits(p, off, uint64(ne.Uint32(e[0:])), uint64(ne.Uint32(e[4:]))) {
				return errors.Wrap(errCorrupt, "branch key outside its page")
			}
			if err := w.page(ne.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
			continue
		}
		pos, ksize, vsize := uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		if !w.fits(p, off, pos, ksize+vsize) {
			return errors.Wrap(errCorrupt, "leaf element outside its page")
		}
		if ne.Uint32(e[0:])&bucketLeafFlag != 0 {
			v := p[off+pos+ksize : off+pos+ksize+vsize]
			if err := w.bucket(v, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// fits reports whether n bytes at pos relative to the element at off lie inside p (all three
// come from 32-bit fields, so the sum cannot overflow).
func (w *walker) fits(p []byte, off, pos, n uint64) bool {
	return off+pos+n <= uint64(len(p))
}

// bucket checks a bucket value: a root page, or an inline leaf page following the header.
func (w *walker) bucket(v []byte, depth int) error {
	if len(v) < bucketHeaderSize {
		return errors.Wrap(errCorrupt, "bucket header")
	}
	if root := ne.Uint64(v); root != 0 {
		return w.page(root, depth)
	}
	inline := v[bucketHeaderSize:]
	if len(inline) < pageHeaderSize || ne.Uint16(inline[8:]) != leafPageFlag {
		return errors.Wrap(errCorrupt, "inline bucket page")
	}
	return w.elements(inline, leafPageFlag, depth)
}
