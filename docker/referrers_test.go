package docker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/types"
)

// indexStore is a fake registry's tag-schema index with ETags. before and after, when set,
// run around the n-th PUT (1-based) to simulate another writer.
type indexStore struct {
	mu       sync.Mutex
	body     []byte
	ifMatch  bool // honour If-Match
	always   bool // answer every conditional PUT with 412 (a broken If-Match)
	before   func(s *indexStore, n int)
	after    func(s *indexStore, n int)
	ifMatchs []string // the If-Match of every PUT
	// late is another writer's write on its way (based on an index it read before ours): it
	// lands once the client has waited lateAfter (on the virtual clock its sleeper advances),
	// or else right after the first GET that comes before then.
	late      []byte
	lateAfter time.Duration
	clock     time.Duration // advanced by the client's waits
}

func (s *indexStore) etag() string { return `"` + digest.FromBytes(s.body).String() + `"` }

func (s *indexStore) add(t *testing.T, descs ...imgspecv1.Descriptor) {
	b, _, err := manifest.AddReferrers(s.body, descs)
	if err != nil {
		t.Error(err)
	}
	s.body = b
}

func (s *indexStore) handler(t *testing.T, tag string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case r.URL.Path == "/v2/":
		case strings.Contains(r.URL.Path, "/referrers/"):
			writeRegistryError(w, http.StatusNotFound, "NAME_UNKNOWN", "no referrers API")
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+tag):
			if s.late != nil {
				if s.clock < s.lateAfter {
					defer func() { s.body, s.late = s.late, nil }() // lands right after this read
				} else {
					s.body, s.late = s.late, nil
				}
			}
			if s.body == nil {
				writeRegistryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "no tag")
				return
			}
			w.Header().Set("ETag", s.etag())
			w.Header().Set("Content-Type", imgspecv1.MediaTypeImageIndex)
			_, _ = w.Write(s.body)
		case r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/"+tag):
			s.put(w, r)
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
		}
	}
}

func (s *indexStore) put(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.ifMatchs = append(s.ifMatchs, r.Header.Get("If-Match"))
	n := len(s.ifMatchs)
	if s.before != nil {
		s.before(s, n)
	}
	if im := r.Header.Get("If-Match"); s.ifMatch && im != "" && (s.always || im != s.etag()) {
		writeRegistryError(w, http.StatusPreconditionFailed, "PRECONDITION_FAILED", "changed")
		return
	}
	s.body = body
	if s.after != nil {
		s.after(s, n)
	}
	w.WriteHeader(http.StatusCreated)
}

// TestUpdateReferrersIndex checks the tag-schema index update against registries that honour
// If-Match, ignore it, or refuse every conditional write.
func TestUpdateReferrersIndex(t *testing.T) {
	t.Parallel()
	subject := digest.FromString("subject")
	ours := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString("ours"), Size: 1, ArtifactType: "a/ours"}
	theirs := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString("theirs"), Size: 1}
	old := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString("old"), Size: 1}
	cases := []struct {
		name    string
		ifMatch bool
		always  bool
		// concurrent is the other writer, run around our n-th PUT.
		before, after func(t *testing.T, s *indexStore, n int)
		want          []imgspecv1.Descriptor
		puts          int
	}{
		{name: "no other writer", ifMatch: true, want: []imgspecv1.Descriptor{old, ours}, puts: 1},
		// The other writer's update lands between our read and our write: the registry
		// refuses ours (412); we read again and merge.
		{name: "If-Match refuses a stale write", ifMatch: true, before: func(t *testing.T, s *indexStore, n int) {
			if n == 1 {
				s.add(t, theirs)
			}
		}, want: []imgspecv1.Descriptor{old, theirs, ours}, puts: 2},
		// The registry ignores If-Match, and a writer that read the index before our write
		// replaces it right after: the read-back finds our entry gone and writes the merge.
		{name: "stale write of another writer", after: func(t *testing.T, s *indexStore, n int) {
			if n == 1 {
				s.body = nil
				s.add(t, old, theirs)
			}
		}, want: []imgspecv1.Descriptor{old, theirs, ours}, puts: 2},
		// The registry ignores If-Match, and a writer that read the index before our write
		// lands its stale write 20 ms after ours is answered: a read-back at once misses
		// it (the entry is lost, as seen with two imgcopy copies against distribution 2.8);
		// the read-back waits for the index to settle, finds our entry gone and merges.
		{name: "stale write still on its way", after: func(t *testing.T, s *indexStore, n int) {
			if n == 1 {
				s.late, s.lateAfter = mustIndex(t, old, theirs), s.clock+20*time.Millisecond
			}
		}, want: []imgspecv1.Descriptor{old, theirs, ours}, puts: 2},
		// A registry refusing every conditional write: after two refusals of an unchanged
		// index the update goes on without If-Match.
		{name: "broken If-Match", ifMatch: true, always: true, want: []imgspecv1.Descriptor{old, ours}, puts: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tag := manifest.FallbackTag(subject)
			s := &indexStore{ifMatch: tc.ifMatch, always: tc.always}
			s.add(t, old)
			if tc.before != nil {
				s.before = func(s *indexStore, n int) { tc.before(t, s, n) }
			}
			if tc.after != nil {
				s.after = func(s *indexStore, n int) { tc.after(t, s, n) }
			}
			srv := newFakeServer(t, s.handler(t, tag))
			dest, err := newImageDestination(testContext(t), anonSys(), mustParse(t, "//"+srv.host+"/repo:v1").(reference))
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			ctx := withSleeper(testContext(t), func(ctx context.Context, d time.Duration) error {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.clock += d
				return ctx.Err()
			})
			if err := dest.(*destination).updateReferrersIndex(ctx, subject, []imgspecv1.Descriptor{ours}); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			descs, err := manifest.ParseReferrersIndex(s.body)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := descDigests(descs), descDigests(tc.want); got != want {
				t.Errorf("index lists %s, want %s", got, want)
			}
			if n := len(s.ifMatchs); n != tc.puts {
				t.Errorf("%d PUTs (If-Match %q), want %d", n, s.ifMatchs, tc.puts)
			}
			if s.ifMatchs[0] != `"`+digest.FromBytes(mustIndex(t, old)).String()+`"` {
				t.Errorf("the first write carried If-Match %q, want the ETag of the index read", s.ifMatchs[0])
			}
		})
	}
}

func mustIndex(t *testing.T, descs ...imgspecv1.Descriptor) []byte {
	b, _, err := manifest.AddReferrers(nil, descs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func descDigests(descs []imgspecv1.Descriptor) string {
	var out []string
	for _, d := range descs {
		out = append(out, d.Digest.String())
	}
	return strings.Join(out, ",")
}

// TestPutRelatedManifestSubject checks that a manifest with a subject is added to the
// tag-schema index at Commit unless the registry answered its PUT with OCI-Subject.
func TestPutRelatedManifestSubject(t *testing.T) {
	t.Parallel()
	subject := imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageManifest, Digest: digest.FromString("subject"), Size: 1}
	body, err := json.Marshal(imgspecv1.Manifest{MediaType: imgspecv1.MediaTypeImageManifest, ArtifactType: "a/b",
		Config: imgspecv1.DescriptorEmptyJSON, Layers: []imgspecv1.Descriptor{}, Subject: &subject})
	if err != nil {
		t.Fatal(err)
	}
	for _, processed := range []bool{false, true} {
		t.Run(map[bool]string{false: "fallback", true: "OCI-Subject"}[processed], func(t *testing.T) {
			t.Parallel()
			tag := manifest.FallbackTag(subject.Digest)
			s := &indexStore{ifMatch: true}
			index := s.handler(t, tag)
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256:") {
					if processed {
						w.Header().Set("OCI-Subject", subject.Digest.String())
					}
					w.WriteHeader(http.StatusCreated)
					return
				}
				index(w, r)
			})
			dest, err := newImageDestination(testContext(t), anonSys(), mustParse(t, "//"+srv.host+"/repo@"+digest.FromBytes(body).String()).(reference))
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			if err := dest.PutManifest(testContext(t), body, imgspecv1.MediaTypeImageManifest, nil); err != nil {
				t.Fatal(err)
			}
			if err := dest.Commit(testContext(t), types.CommitOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := srv.count(http.MethodPut, "/manifests/"+tag) == 1; got == processed {
				t.Errorf("index written: %v, want %v", got, !processed)
			}
		})
	}
}

// TestReferrersMIMEType: which Content-Types of a 200 answer are read as the referrers API,
// and which are taken for a page of something else (the tag schema is read then).
func TestReferrersMIMEType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		imgspecv1.MediaTypeImageIndex:              true,
		"application/json; charset=utf-8":          true,
		"application/vnd.docker.distribution+json": true,
		"":                         true,
		"text/html; charset=utf-8": false,
		"text/plain":               false,
		"application/octet-stream": false,
		"not a ; type =":           false,
	} {
		if got := referrersMIMEType(ct); got != want {
			t.Errorf("referrersMIMEType(%q) = %v, want %v", ct, got, want)
		}
	}
}
