package copybuf

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sizes records the size of each Write.
type sizes struct {
	got []int
	buf bytes.Buffer
}

func (s *sizes) Write(p []byte) (int, error) {
	s.got = append(s.got, len(p))
	return s.buf.Write(p)
}

// TestCopyWritesLarge: a stream that is neither a file nor a socket reaches the writer in
// pieces of Size, intact.
func TestCopyWritesLarge(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*Size+100)/16)
	w := &sizes{}
	n, err := Copy(w, io.LimitReader(bytes.NewReader(data), int64(len(data))))
	if err != nil || n != int64(len(data)) || !bytes.Equal(w.buf.Bytes(), data) {
		t.Fatalf("copied %d bytes (err %v), want %d intact", n, err, len(data))
	}
	if want := []int{Size, Size, len(data) - 2*Size}; !slices.Equal(w.got, want) {
		t.Errorf("write sizes %v, want %v", w.got, want)
	}
}

// TestCopyToFile: an *os.File destination (whose ReadFrom would copy 32 KiB at a time) gets
// the bytes too.
func TestCopyToFile(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte{7}, Size+1)
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := Copy(f, io.LimitReader(bytes.NewReader(data), int64(len(data)))); err != nil || n != int64(len(data)) {
		t.Fatalf("Copy = %d, %v", n, err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes (err %v), want %d", len(got), err, len(data))
	}
}
