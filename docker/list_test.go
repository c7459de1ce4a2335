package docker

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	distref "github.com/distribution/reference"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

func TestListImages(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	reg := testregistry.Start(t, testregistry.Options{})
	img := newTestImage(t, 1, "amd64")
	for _, tag := range []string{"v2", "v1", "latest"} {
		pushImage(t, ctx, mustParse(t, "//"+reg.Host+"/team/app:"+tag), anonSys(), nil, nil, []testImage{img}, nil)
	}
	cases := []struct {
		name, ref string
		want      []string
	}{
		{"repository lists every tag, sorted", "//" + reg.Host + "/team/app", []string{"latest", "v1", "v2"}},
		{"explicit latest lists just it", "//" + reg.Host + "/team/app:latest", []string{"latest"}},
		{"a tag lists just it", "//" + reg.Host + "/team/app:v1", []string{"v1"}},
		{"a digest lists just it", "//" + reg.Host + "/team/app@" + img.digest.String(), []string{"@" + img.digest.String()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := mustParse(t, tc.ref).(types.ImageLister)
			got, err := reg.ListImages(ctx, anonSys())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, li := range got {
				s := li.Ref.StringWithinTransport()
				if tagged, ok := li.Ref.DockerReference().(distref.Tagged); ok {
					names = append(names, tagged.Tag())
				} else {
					names = append(names, "@"+li.Digest.String())
				}
				if li.Name == nil || li.Name.String() != li.Ref.DockerReference().String() {
					t.Errorf("listed %s with name %v", s, li.Name)
				}
				if !strings.HasSuffix(tc.ref, "/team/app") && li.Digest != img.digest {
					t.Errorf("listed %s with digest %q, want %s", s, li.Digest, img.digest)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("listed %v, want %v", names, tc.want)
			}
		})
	}
}

func TestListImagesOfAMissingImage(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	for _, ref := range []string{"//" + reg.Host + "/app:nope", "//" + reg.Host + "/app@sha256:" + sha} {
		if _, err := mustParse(t, ref).(types.ImageLister).ListImages(testContext(t), anonSys()); !errors.Is(err, types.ErrManifestNotFound) {
			t.Errorf("listing %s: %v, want ErrManifestNotFound", ref, err)
		}
	}
}

func TestListImagesSkipsInvalidTags(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			_, _ = w.Write([]byte(`{"name":"app","tags":["b","a","../x","b","-bad",""]}`))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	got, err := mustParse(t, "//"+f.host+"/app").(types.ImageLister).ListImages(testContext(t), anonSys())
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, li := range got {
		tags = append(tags, li.Ref.StringWithinTransport())
	}
	want := []string{"//" + f.host + "/app:a", "//" + f.host + "/app:b"}
	if strings.Join(tags, " ") != strings.Join(want, " ") {
		t.Errorf("listed %v, want %v", tags, want)
	}
}

func TestManifestDigestUsesHEAD(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	reg := testregistry.Start(t, testregistry.Options{})
	img := newTestImage(t, 2, "amd64")
	pushImage(t, ctx, mustParse(t, "//"+reg.Host+"/app:v1"), anonSys(), nil, nil, []testImage{img}, nil)
	reg.ResetRequests()

	cases := []struct {
		name, ref string
		wantErr   error
	}{
		{"tag", "//" + reg.Host + "/app:v1", nil},
		{"digest", "//" + reg.Host + "/app@" + img.digest.String(), nil},
		{"missing tag", "//" + reg.Host + "/app:nope", types.ErrManifestNotFound},
		{"missing repository", "//" + reg.Host + "/nope:v1", types.ErrManifestNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := mustParse(t, tc.ref).(types.ManifestDigester).ManifestDigest(ctx, anonSys())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || d != img.digest {
				t.Fatalf("got %s, %v; want %s", d, err, img.digest)
			}
		})
	}
	if n := countRequests(reg.Requests(), http.MethodGet, "/manifests/", ""); n != 0 {
		t.Errorf("%d manifest GETs, want 0 (HEAD only)", n)
	}
}

func TestDeleteTag(t *testing.T) {
	t.Parallel()
	unsupported := func(w http.ResponseWriter) {
		writeRegistryError(w, http.StatusMethodNotAllowed, codeUnsupported, "The operation is unsupported.")
	}
	cases := []struct {
		name string
		// refuseByTag answers DELETE by tag; refuseByDigest, when set, DELETE by digest.
		refuseByTag, refuseByDigest func(w http.ResponseWriter)
		wantTags                    string
		wantErr                     bool
	}{
		{name: "registry deletes the tag", wantTags: "keep"},
		{name: "placeholder work-around after UNSUPPORTED", refuseByTag: unsupported, wantTags: "keep"},
		{name: "placeholder work-around after distribution 2.x's DIGEST_INVALID", refuseByTag: func(w http.ResponseWriter) {
			writeRegistryError(w, http.StatusBadRequest, codeDigestInvalid, "provided digest did not match uploaded content")
		}, wantTags: "keep"},
		// distribution 2.x without storage.delete.enabled: the tag must keep its image.
		{name: "deletes disabled", refuseByTag: unsupported, refuseByDigest: unsupported, wantTags: "keep,old", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			opts := testregistry.Options{Wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/manifests/") {
						byDigest := strings.Contains(r.URL.Path, "sha256:")
						if refuse := map[bool]func(http.ResponseWriter){false: tc.refuseByTag, true: tc.refuseByDigest}[byDigest]; refuse != nil {
							refuse(w)
							return
						}
					}
					next.ServeHTTP(w, r)
				})
			}}
			reg := testregistry.Start(t, opts)
			img := newTestImage(t, 3, "amd64")
			for _, tag := range []string{"old", "keep"} {
				pushImage(t, ctx, mustParse(t, "//"+reg.Host+"/app:"+tag), anonSys(), nil, nil, []testImage{img}, nil)
			}
			err := mustParse(t, "//"+reg.Host+"/app:old").(types.TagDeleter).DeleteTag(ctx, anonSys())
			if (err != nil) != tc.wantErr {
				t.Fatalf("DeleteTag: %v, want error %v", err, tc.wantErr)
			}
			tags, err := mustParse(t, "//"+reg.Host+"/app").(types.TagLister).ListTags(ctx, anonSys())
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(tags)
			if strings.Join(tags, ",") != tc.wantTags {
				t.Errorf("tags after deleting old: %v, want %s", tags, tc.wantTags)
			}
			for _, tag := range tags {
				d, err := mustParse(t, "//"+reg.Host+"/app:"+tag).(types.ManifestDigester).ManifestDigest(ctx, anonSys())
				if err != nil || d != img.digest {
					t.Errorf("%s: %s, %v; want %s", tag, d, err, img.digest)
				}
			}
		})
	}
}

func TestDeleteTagRefusesDigestReference(t *testing.T) {
	t.Parallel()
	ref := mustParse(t, "//127.0.0.1:1/app@sha256:"+strings.Repeat("a", 64))
	if err := ref.(types.TagDeleter).DeleteTag(testContext(t), anonSys()); !errors.Is(err, types.ErrUsage) {
		t.Errorf("got %v, want ErrUsage", err)
	}
}

// countingLimiter records what the client announces.
type countingLimiter struct {
	mu              sync.Mutex
	starts, pulls   int
	done, withResp  int
	remainingHeader []string
}

func (l *countingLimiter) Start(_ context.Context, registry string, pull bool) (func(func(string) string), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts++
	if pull {
		l.pulls++
	}
	return func(h func(string) string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.done++
		if h != nil {
			l.withResp++
			l.remainingHeader = append(l.remainingHeader, h("RateLimit-Remaining"))
		}
	}, nil
}

func TestRequestLimiterSeesEveryRequest(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	reg := testregistry.Start(t, testregistry.Options{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("RateLimit-Remaining", "42;w=21600")
			next.ServeHTTP(w, r)
		})
	}})
	img := newTestImage(t, 4, "amd64")
	lim := &countingLimiter{}
	sys := &types.SystemContext{NoCreds: true, RequestLimiter: lim}
	pushImage(t, ctx, mustParse(t, "//"+reg.Host+"/app:v1"), sys, nil, nil, []testImage{img}, nil)
	pullImage(t, ctx, mustParse(t, "//"+reg.Host+"/app:v1"), sys, []testImage{img}, nil)

	recs := reg.Requests()
	uploads := countRequests(recs, http.MethodPatch, "/blobs/uploads/", "")
	lim.mu.Lock()
	defer lim.mu.Unlock()
	// The HTTPS attempt of each client's ping gets no response (the registry speaks HTTP), so
	// it is announced but absent from the registry's records.
	if lim.withResp != len(recs)-uploads || lim.done != lim.starts {
		t.Errorf("limiter saw %d starts, %d dones, %d responses for %d requests (%d streamed uploads not announced)",
			lim.starts, lim.done, lim.withResp, len(recs), uploads)
	}
	if want := countRequests(recs, http.MethodGet, "/manifests/", ""); lim.pulls != want || want == 0 {
		t.Errorf("limiter saw %d pulls, want %d manifest GETs", lim.pulls, want)
	}
	for _, h := range lim.remainingHeader {
		if h != "42;w=21600" {
			t.Fatalf("limiter read RateLimit-Remaining %q", h)
		}
	}
}
