package fileid

import (
	"bytes"
	"sync"
)

// Last keeps the value parsed last from a file (or a part of one), with the file's ID or, for
// a file without one (the zero ID), its bytes: a listing that opens each of many images
// reads and parses the shared index once instead of once per image. The value is shared and
// must not be modified. The zero Last is ready for use.
type Last[T any] struct {
	mu  sync.Mutex
	id  ID
	b   []byte // only when id is the zero ID
	val *T
}

// Get returns the value kept when it was parsed from the content id identifies or, for the
// zero ID, from the bytes b (nil b: not read yet); else nil.
func (l *Last[T]) Get(id ID, b []byte) *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.val == nil || l.id != id:
		return nil
	case !id.IsZero() || (b != nil && bytes.Equal(l.b, b)):
		return l.val
	}
	return nil
}

// Put keeps val, parsed from b, the content id identifies.
func (l *Last[T]) Put(id ID, b []byte, val *T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.id, l.b, l.val = id, nil, val
	if id.IsZero() {
		l.b = b
	}
}

// Holds reports whether val is the value kept.
func (l *Last[T]) Holds(val *T) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return val != nil && l.val == val
}
