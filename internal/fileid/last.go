package fileid

import (
	"bytes"
	"sync"
)

// lastKept is how many values a Last keeps: enough for a copy or sync between two stores
// (the source's index and the destination's, read in turn for every image) and a few more.
const lastKept = 4

// Last keeps the values parsed last from a few files (or parts of one), one per file, each
// with the file's ID or, for a file without one (the zero ID), its bytes: a listing that opens
// each of many images reads and parses the shared index once instead of once per image, and a
// sync between two layouts does not evict one's index by reading the other's. The values are
// shared and must not be modified. The zero Last is ready for use.
type Last[T any] struct {
	mu   sync.Mutex
	kept []lastEntry[T] // the most recently used first
}

type lastEntry[T any] struct {
	key string // the file the value was parsed from, as the caller names it
	id  ID
	b   []byte // only when id is the zero ID
	val *T
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
// only decides which value val replaces), in place of the value kept for that file or that
// content or, when all places are taken, of the least recently used.
func (l *Last[T]) Put(key string, id ID, b []byte, val *T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := lastEntry[T]{key: key, id: id, val: val}
	if id.IsZero() {
		e.b = b
	}
	at := len(l.kept)
	for i := range l.kept {
		if l.kept[i].key == key || l.kept[i].matches(id, b) {
			at = i
			break
		}
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
