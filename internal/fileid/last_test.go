package fileid

import "testing"

// TestLast: a kept value is returned for the same ID, or for the same bytes when there is no
// ID, and for nothing else.
func TestLast(t *testing.T) {
	t.Parallel()
	var l Last[string]
	a, b := "a", "b"
	id := ID{dev: 1, ino: 2, size: 3}
	if l.Get(id, nil) != nil || l.Holds(&a) {
		t.Fatal("an empty Last returned a value")
	}
	l.Put(id, []byte("x"), &a)
	if l.Get(id, nil) != &a || l.Get(ID{dev: 1, ino: 3, size: 3}, nil) != nil || l.Get(ID{}, []byte("x")) != nil || !l.Holds(&a) {
		t.Error("kept by ID: wrong answers")
	}
	l.Put(ID{}, []byte("y"), &b)
	if l.Get(ID{}, []byte("y")) != &b || l.Get(ID{}, []byte("z")) != nil || l.Get(ID{}, nil) != nil || l.Get(id, nil) != nil || l.Holds(&a) {
		t.Error("kept by bytes: wrong answers")
	}
}
