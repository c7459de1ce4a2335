package tarindex

import (
	"bytes"
	"slices"
	"testing"

	"github.com/imgcopy/imgcopy/internal/fileid"
)

// TestSharedReadsHeadersOncePerID: Shared does not read the headers of a tar again while its
// ID stays the same (so the index it returns for a tar that changed under the same ID still
// names the old members: the ID is what tells them apart), and reads them again for another
// ID or none.
func TestSharedReadsHeadersOncePerID(t *testing.T) {
	// Not parallel: Shared keeps one index for the whole package.
	a := buildTar(t, []member{{name: "a.json", content: "AAAA"}})
	b := buildTar(t, []member{{name: "b.json", content: "BBBB"}})
	if len(a) != len(b) {
		t.Fatalf("the two tars differ in size: %d, %d", len(a), len(b))
	}
	id, other := fileid.New(), fileid.New()
	tests := []struct {
		name      string
		tar       []byte
		id        fileid.ID
		wantNames []string
		wantData  string // of the member wantNames[0], read from tar
	}{
		{"first build", a, id, []string{"a.json"}, "AAAA"},
		{"same ID: headers not read again", b, id, []string{"a.json"}, "BBBB"},
		{"another ID", b, other, []string{"b.json"}, "BBBB"},
		{"no ID", a, fileid.ID{}, []string{"a.json"}, "AAAA"},
		{"the last ID is still kept", a, other, []string{"b.json"}, "AAAA"},
	}
	for _, tc := range tests {
		ix, err := Shared(bytes.NewReader(tc.tar), int64(len(tc.tar)), tc.id)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := ix.Names(); !slices.Equal(got, tc.wantNames) {
			t.Errorf("%s: names %q, want %q", tc.name, got, tc.wantNames)
			continue
		}
		sr, err := ix.Open(tc.wantNames[0])
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := make([]byte, sr.Size())
		if _, err := sr.ReadAt(got, 0); err != nil || string(got) != tc.wantData {
			t.Errorf("%s: member holds %q, %v; want %q read from the tar given", tc.name, got, err, tc.wantData)
		}
	}
	if _, err := Shared(bytes.NewReader(a[:100]), 100, fileid.New()); err == nil {
		t.Error("Shared indexed a truncated tar")
	}
}
