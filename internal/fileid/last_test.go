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
	if l.Get(ID{}, []byte("y")) != &b || l.Get(ID{}, []byte("z")) != nil || l.Get(ID{}, nil) != nil || l.Get(id, nil) != &a {
		t.Error("kept by bytes, next to the file's older value: wrong answers")
	}
}

// TestLastKeepsRecentVersionsOfAFile: a file's newest values, perFile of them, are kept (a
// reader that read the file before a writer replaced it asks for an older one), the one put
// first gives way even when it was used last, and putting a kept version again does not make
// it take another place.
func TestLastKeepsRecentVersionsOfAFile(t *testing.T) {
	t.Parallel()
	var l Last[int]
	vals := make([]int, perFile+1)
	bytesOf := func(i int) []byte { return []byte(fmt.Sprint("version ", i)) }
	other := -1
	l.Put("other", ID{}, []byte("other"), &other)
	for i := range perFile {
		l.Put("f", ID{}, bytesOf(i), &vals[i])
	}
	for i := range perFile {
		if l.Get(ID{}, bytesOf(i)) != &vals[i] {
			t.Fatalf("version %d of the file not kept", i)
		}
	}
	l.Put("f", ID{}, bytesOf(1), &vals[1]) // a reader that parsed version 1 too
	if l.Get(ID{}, bytesOf(0)) != &vals[0] {
		t.Error("version 0 given up for a version already kept")
	}
	_ = l.Get(ID{}, bytesOf(0)) // version 0 used last, but put first
	l.Put("f", ID{}, bytesOf(perFile), &vals[perFile])
	for i := 1; i <= perFile; i++ {
		if l.Get(ID{}, bytesOf(i)) != &vals[i] {
			t.Errorf("version %d given up", i)
		}
	}
	if l.Get(ID{}, bytesOf(0)) != nil || l.Get(ID{}, []byte("other")) != &other {
		t.Error("the oldest version kept, or the other file's value given up")
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
