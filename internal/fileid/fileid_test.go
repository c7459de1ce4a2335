package fileid

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func statID(t *testing.T, path string) ID {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return Of(fi)
}

// TestOfChangesWithTheFile: a file keeps its ID while it stays as it is, and gets another when
// it is replaced by rename (even with the same size and time) or rewritten in place.
func TestOfChangesWithTheFile(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("files have no inode here: Of is the zero ID")
	}
	mtime := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"replaced by rename, same size and time", func(t *testing.T, path string) {
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, []byte("content B"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tmp, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"rewritten in place, another size", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("content B, longer"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}},
		{"time changed", func(t *testing.T, path string) {
			if err := os.Chtimes(path, mtime, mtime.Add(time.Nanosecond)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "index.json")
			if err := os.WriteFile(path, []byte("content A"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			before := statID(t, path)
			if before.IsZero() {
				t.Fatal("Of = the zero ID for a regular file")
			}
			if again := statID(t, path); again != before {
				t.Fatalf("the same file has two IDs: %+v, %+v", before, again)
			}
			tc.change(t, path)
			if after := statID(t, path); after == before {
				t.Errorf("the file changed but kept its ID %+v", after)
			}
		})
	}
}

// TestStableWaitsForTheClock: a file modified a moment ago (or in the future) has no stable
// ID, as a write in place within the same tick of the file system's clock would keep it.
func TestStableWaitsForTheClock(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("files have no inode here: Of is the zero ID")
	}
	tests := []struct {
		name   string
		mtime  time.Time
		stable bool
	}{
		{"an hour ago", time.Now().Add(-time.Hour), true},
		{"just now", time.Now(), false},
		{"in the future", time.Now().Add(time.Hour), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, tc.mtime, tc.mtime); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := Stable(fi); got.IsZero() == tc.stable || (tc.stable && got != Of(fi)) {
				t.Errorf("Stable = %+v, want stable %v (Of = %+v)", got, tc.stable, Of(fi))
			}
		})
	}
}

// memberInfo is a FileInfo whose Sys is an ID, as an archive's file system serves it.
type memberInfo struct {
	fs.FileInfo
	id ID
}

func (m memberInfo) Sys() any { return m.id }

func TestDerivedIDs(t *testing.T) {
	t.Parallel()
	file := ID{dev: 1, ino: 2, size: 100, mtime: 3, ctime: 4}
	a, b := New(), New()
	tests := []struct {
		name       string
		got, other ID
		equal      bool
	}{
		{"parts at other offsets", file.Part(512, 10), file.Part(1024, 10), false},
		{"parts of other sizes", file.Part(512, 10), file.Part(512, 11), false},
		{"a part is not its file", file.Part(0, 0), file, false},
		{"the same part", file.Part(512, 10), file.Part(512, 10), true},
		{"two New", a, b, false},
		{"Node keeps the inode only", (ID{dev: 1, ino: 2, size: 5, mtime: 6}).Node(), file.Node(), true},
		{"part of nothing", ID{}.Part(512, 10), ID{}, true},
		{"no part of a part", file.Part(512, 10).Part(0, 1), ID{}, true},
		{"no node of a New", a.Node(), ID{}, true},
		{"an ID in Sys", Of(memberInfo{id: file.Part(512, 10)}), file.Part(512, 10), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if (tc.got == tc.other) != tc.equal {
				t.Errorf("%+v == %+v is %v, want %v", tc.got, tc.other, !tc.equal, tc.equal)
			}
		})
	}
}
