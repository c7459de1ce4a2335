package docker

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestNewReferenceNil: a nil name (a parse whose error was dropped) is a usage error, not a
// panic.
func TestNewReferenceNil(t *testing.T) {
	t.Parallel()
	if _, err := NewReference(nil); types.Classify(err) != types.ClassUsage {
		t.Fatalf("NewReference(nil): %v, want a usage error", err)
	}
}

func TestListTagsPagination(t *testing.T) {
	t.Parallel()
	var srv *fakeServer
	srv = newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/a/b/tags/list" {
			return
		}
		switch r.URL.Query().Get("last") {
		case "":
			w.Header().Set("Link", `</v2/a/b/tags/list?n=2&last=t2>; rel="next"`)
			_, _ = w.Write([]byte(`{"name":"a/b","tags":["t1","t2"]}`))
		case "t2":
			w.Header().Set("Link", `<`+srv.URL+`/v2/a/b/tags/list?n=2&last=t4>; rel="next"`)
			_, _ = w.Write([]byte(`{"name":"a/b","tags":["t3","t4"]}`))
		default:
			_, _ = w.Write([]byte(`{"name":"a/b","tags":["t5"]}`))
		}
	})
	tags, err := mustParse(t, "//"+srv.host+"/a/b").(types.TagLister).ListTags(testContext(t), anonSys())
	if err != nil || !slices.Equal(tags, []string{"t1", "t2", "t3", "t4", "t5"}) {
		t.Fatalf("ListTags = %v, %v", tags, err)
	}
}

func TestDeleteImage(t *testing.T) {
	t.Parallel()
	img := newTestImage(t, 40, "amd64")
	cases := []struct {
		name       string
		ref        string
		deleteCode int
		wantErr    error
		wantMsg    string
	}{
		{name: "by tag", ref: ":t", deleteCode: http.StatusAccepted},
		{name: "by digest", ref: "@" + img.digest.String(), deleteCode: http.StatusAccepted},
		{name: "unknown tag", ref: ":missing", wantErr: types.ErrManifestNotFound},
		{name: "deletes disabled", ref: ":t", deleteCode: http.StatusMethodNotAllowed, wantMsg: "UNSUPPORTED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodDelete && r.URL.Path == "/v2/a/b/manifests/"+img.digest.String():
					if tc.deleteCode == http.StatusMethodNotAllowed {
						writeRegistryError(w, tc.deleteCode, "UNSUPPORTED", "The operation is unsupported.")
						return
					}
					w.WriteHeader(tc.deleteCode)
				case r.Method == http.MethodHead && strings.HasSuffix(r.URL.Path, "/manifests/missing"):
					w.WriteHeader(http.StatusNotFound)
				case r.Method == http.MethodHead || r.Method == http.MethodGet:
					serveImage(img, w, r)
				default:
					w.WriteHeader(http.StatusBadRequest)
				}
			})
			err := mustParse(t, "//"+srv.host+"/a/b"+tc.ref).(types.ImageDeleter).DeleteImage(testContext(t), anonSys())
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
			case tc.wantMsg != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("error %v, want %q", err, tc.wantMsg)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if srv.count(http.MethodDelete, "/manifests/"+img.digest.String()) != 1 {
					t.Errorf("no DELETE by digest: %+v", srv.requests())
				}
			}
		})
	}
}
