package fileid

import (
	"bytes"
	"sync"
)

// lastKept is how many values a Last keeps: enough for a copy or sync between two stores
// (the source's index and the destination's, read in turn for every image) and a few more.
// perFile is how many of them may be values of one file: the version a writer is writing
// and the two before, which readers that read the file a moment before it was replaced still
// ask for (a sync into a layout writes its index.json again and again while its other images
// read it: with one value per file, each such reader parsed the older version again and put
// it in place of the newer, which the next reader then parsed again).
const (
	lastKept = 4
	perFile  = 3
)

// Last keeps the values parsed last from a few files (or parts of one), three per file, each
// with the file's ID or, for a file without one (the zero ID), its bytes: a listing that opens
// each of many images reads and parses the shared index once instead of once per image, and a
// sync between two layouts does not evict one's index by reading the other's. The values are
// shared and must not be modified. The zero Last is ready for use.
type Last[T any] struct {
	mu   sync.Mutex
	kept []lastEntry[T] // the most recently used first
	puts uint64         // numbers the values put
}

type lastEntry[T any] struct {
	key string // the file the value was parsed from, as the caller names it
	id  ID
	b   []byte // only when id is the zero ID
	val *T
	put uint64 // when it was put: of a file's values, the one put first gives way
}

// matches reports whether e was parsed from the content id identifies or, for the zero ID,
// from the bytes b (nil b: not read yet).
func (e *lastEntry[T]) matches(id ID, b []byte) bool {
	if e.id != id {
		return false
	}
	return !id.IsZero() || (b != nil && bytes.Equal(e.b, b))
}

// Get returns the value kept when it was parsed from the content id identifies or, for the
// zero ID, from the bytes b (nil b: not read yet); else nil.
func (l *Last[T]) Get(id ID, b []byte) *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.kept {
		if l.kept[i].matches(id, b) {
			e := l.kept[i]
			copy(l.kept[1:i+1], l.kept[:i])
			l.kept[0] = e
			return e.val
		}
	}
	return nil
}

// Put keeps val, parsed from b, the content id identifies, of the file key names (a path: it
// only decides which value val replaces), in place of the value kept for that content, or of
// the file's value put first when perFile are kept, or, when all places are taken, of the
// least recently used.
func (l *Last[T]) Put(key string, id ID, b []byte, val *T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.puts++
	e := lastEntry[T]{key: key, id: id, val: val, put: l.puts}
	if id.IsZero() {
		e.b = b
	}
	at, same, oldest := len(l.kept), 0, -1
	for i := range l.kept {
		if l.kept[i].matches(id, b) {
			at = i
			break
		}
		if l.kept[i].key == key {
			same++
			if oldest < 0 || l.kept[i].put < l.kept[oldest].put {
				oldest = i
			}
		}
	}
	if at == len(l.kept) && same >= perFile {
		at = oldest
	}
	if at == len(l.kept) {
		if at < lastKept {
			l.kept = append(l.kept, lastEntry[T]{})
		} else {
			at--
		}
	}
	copy(l.kept[1:at+1], l.kept[:at])
	l.kept[0] = e
}

// Contents returns the contents of n bytes that values kept without an ID were parsed from,
// for a caller to compare with a file as it reads it (then Get with the one it holds): the
// slices are shared and must not be modified.
func (l *Last[T]) Contents(n int64) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var res [][]byte
	for _, e := range l.kept {
		if e.id.IsZero() && e.b != nil && int64(len(e.b)) == n {
			res = append(res, e.b)
		}
	}
	return res
}

// Holds reports whether val is one of the values kept.
func (l *Last[T]) Holds(val *T) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.kept {
		if val != nil && e.val == val {
			return true
		}
	}
	return false
}
