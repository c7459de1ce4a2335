package tarindex

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

type member struct {
	name, link, content string
	typ                 byte
}

func buildTar(t testing.TB, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: m.name, Linkname: m.link, Typeflag: typ, Mode: 0o644, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(m.content))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, m.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildAndOpen(t *testing.T) {
	long := strings.Repeat("d/", 80) + "deep.tar" // needs a PAX long name
	data := buildTar(t, []member{
		{name: "./manifest.json", content: `[{"Config":"c.json"}]`},
		{name: "blobs/", typ: tar.TypeDir},
		{name: "blobs/sha256/aaaa", content: "layer-bytes"},
		{name: "abc/layer.tar", typ: tar.TypeSymlink, link: "../blobs/sha256/aaaa"},
		{name: "hard", typ: tar.TypeLink, link: "blobs/sha256/aaaa"},
		{name: long, content: "deep"},
		{name: "empty", content: ""},
	})
	ix, err := Build(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, want string }{
		{"manifest.json", `[{"Config":"c.json"}]`},
		{"./blobs/sha256/aaaa", "layer-bytes"},
		{"abc/layer.tar", "layer-bytes"},
		{"hard", "layer-bytes"},
		{long, "deep"},
		{"empty", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sr, err := ix.Open(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(sr)
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ix.Open("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing member: got %v, want fs.ErrNotExist", err)
	}
	if n := len(ix.Names()); n != 6 {
		t.Errorf("Names() has %d entries, want 6: %v", n, ix.Names())
	}
}

func TestBuildRejectsHostileArchives(t *testing.T) {
	cases := []struct {
		name    string
		members []member
		wantErr error
		wantMsg string
	}{
		{name: "dotdot", members: []member{{name: "../evil", content: "x"}}, wantErr: ErrUnsafePath},
		{name: "dotdot inside", members: []member{{name: "a/../../evil", content: "x"}}, wantErr: ErrUnsafePath},
		{name: "absolute", members: []member{{name: "/etc/passwd", content: "x"}}, wantErr: ErrUnsafePath},
		{name: "symlink escapes", members: []member{{name: "l", typ: tar.TypeSymlink, link: "../../etc/passwd"}}, wantErr: ErrUnsafePath, wantMsg: "points outside"},
		{name: "absolute symlink", members: []member{{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"}}, wantErr: ErrUnsafePath},
		{name: "hardlink escapes", members: []member{{name: "l", typ: tar.TypeLink, link: "../x"}}, wantErr: ErrUnsafePath},
		{name: "duplicate", members: []member{{name: "a", content: "1"}, {name: "./a", content: "2"}}, wantErr: ErrDuplicateEntry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := buildTar(t, tc.members)
			_, err := Build(bytes.NewReader(data), int64(len(data)))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
		})
	}
}

func TestBuildAcceptsIdenticalDuplicates(t *testing.T) {
	data := buildTar(t, []member{{name: "c.json", content: "{}"}, {name: "./c.json", content: "{}"}, {name: "x", content: "1"}})
	ix, err := Build(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.Names(); len(got) != 2 {
		t.Errorf("Names() = %v, want c.json and x once each", got)
	}
}

func TestBuildTruncated(t *testing.T) {
	data := buildTar(t, []member{{name: "big", content: strings.Repeat("x", 4096)}})
	cut := data[:512+100] // header plus part of the content
	_, err := Build(bytes.NewReader(cut), int64(len(cut)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestLookupLinkLoop(t *testing.T) {
	data := buildTar(t, []member{
		{name: "a", typ: tar.TypeSymlink, link: "b"},
		{name: "b", typ: tar.TypeSymlink, link: "a"},
	})
	ix, err := Build(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Open("a"); err == nil || !strings.Contains(err.Error(), "too many levels of links") {
		t.Fatalf("got %v, want link loop error", err)
	}
}

func FuzzBuild(f *testing.F) {
	f.Add(buildTar(f, []member{{name: "manifest.json", content: "[]"}, {name: "l", typ: tar.TypeSymlink, link: "manifest.json"}}))
	f.Add(buildTar(f, []member{{name: "../x", content: "1"}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := Build(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, n := range ix.Names() {
			sr, err := ix.Open(n)
			if err != nil {
				continue
			}
			if sr.Size() > int64(len(data)) {
				t.Fatalf("member %q larger than the archive", n)
			}
			_, _ = io.Copy(io.Discard, sr)
		}
	})
}

// TestBuildBoundsMembers: an archive of more members than the index may hold (a hostile
// archive of millions of empty members would exhaust memory) is ErrTooLarge; identical
// duplicates and members that are never image content do not count.
func TestBuildBoundsMembers(t *testing.T) {
	t.Parallel()
	ok := []member{{name: "a", content: "1"}, {name: "./a", content: "1"}, {name: "fifo", typ: tar.TypeFifo}, {name: "b", content: "2"}}
	data := buildTar(t, ok)
	if _, err := build(bytes.NewReader(data), int64(len(data)), 2); err != nil {
		t.Fatalf("two members, limit 2: %v", err)
	}
	data = buildTar(t, append(ok, member{name: "c", content: "3"}))
	_, err := build(bytes.NewReader(data), int64(len(data)), 2)
	if !errors.Is(err, types.ErrTooLarge) {
		t.Fatalf("three members, limit 2: got %v, want ErrTooLarge", err)
	}
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	ra io.ReaderAt
	n  int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ra.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// TestBuildReadsOnlyHeaders: indexing skips the members' content instead of reading it, so
// that opening a docker-archive or oci-archive of many GiB reads a few KiB of headers (and
// cannot be held up for seconds, uncancellable, before the copy starts).
func TestBuildReadsOnlyHeaders(t *testing.T) {
	big := strings.Repeat("x", 4<<20)
	data := buildTar(t, []member{{name: "a.tar", content: big}, {name: "manifest.json", content: "[]"}, {name: "b.tar", content: big}})
	ra := &countingReaderAt{ra: bytes.NewReader(data)}
	ix, err := Build(ra, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Lookup("b.tar"); err != nil {
		t.Fatal(err)
	}
	if ra.n > 64<<10 {
		t.Errorf("indexing a %d-byte archive of 3 members read %d bytes", len(data), ra.n)
	}
	// A member cut short is still found at its last byte.
	if _, err := Build(bytes.NewReader(data[:len(data)-1024-1]), int64(len(data)-1024-1)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated archive: %v, want io.ErrUnexpectedEOF", err)
	}
}
