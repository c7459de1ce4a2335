package fileid

import (
	"fmt"
	"testing"
)

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
	l.Put("f", id, []byte("x"), &a)
	if l.Get(id, nil) != &a || l.Get(ID{dev: 1, ino: 3, size: 3}, nil) != nil || l.Get(ID{}, []byte("x")) != nil || !l.Holds(&a) {
		t.Error("kept by ID: wrong answers")
	}
	l.Put("f", ID{}, []byte("y"), &b)
	if l.Get(ID{}, []byte("y")) != &b || l.Get(ID{}, []byte("z")) != nil || l.Get(ID{}, nil) != nil || l.Get(id, nil) != nil || l.Holds(&a) {
		t.Error("kept by bytes, in place of the file's older value: wrong answers")
	}
}

// TestLastKeepsSeveralFiles: the values of a few files are kept side by side (a sync reads
// its source's index and its destination's in turn), the least recently used giving way.
func TestLastKeepsSeveralFiles(t *testing.T) {
	t.Parallel()
	var l Last[int]
	vals := make([]int, lastKept+1)
	idOf := func(i int) ID { return ID{dev: 1, ino: uint64(i + 10), size: 1} }
	for i := range lastKept {
		l.Put(fmt.Sprint("file", i), idOf(i), nil, &vals[i])
	}
	for i := range lastKept {
		if l.Get(idOf(i), nil) != &vals[i] {
			t.Fatalf("value of file %d not kept next to the others", i)
		}
	}
	_ = l.Get(idOf(0), nil) // file 0 used last; file 1 is now the least recently used
	l.Put("another", idOf(lastKept), nil, &vals[lastKept])
	if l.Get(idOf(1), nil) != nil {
		t.Error("the least recently used value was not the one given up")
	}
	for _, i := range []int{0, 2, 3, lastKept} {
		if l.Get(idOf(i), nil) != &vals[i] {
			t.Errorf("value of file %d given up", i)
		}
	}
}
