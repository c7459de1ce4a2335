package docker

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/resume"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// tokenRevoker wraps a Bearer-protected registry: from the nth request that match accepts on,
// it refuses the token that request carries with a 401 and a fresh challenge, as a registry
// does with a token that expired (or that a proxy buffering the body checked only after the
// body arrived). Later tokens are accepted.
type tokenRevoker struct {
	host  string // the registry, for the challenge's realm
	match func(r *http.Request) bool
	nth   int

	mu      sync.Mutex
	seen    int
	revoked string // the refused Authorization value
	refused int    // requests refused
}

func (tr *tokenRevoker) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tr.mu.Lock()
		if tr.revoked == "" && auth != "" && tr.match(r) {
			if tr.seen++; tr.seen == tr.nth {
				tr.revoked = auth
			}
		}
		refuse := auth != "" && auth == tr.revoked
		if refuse {
			tr.refused++
		}
		tr.mu.Unlock()
		if !refuse {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+tr.host+`/auth/token",service="`+tr.host+`",error="invalid_token"`)
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "token expired")
	})
}

func (tr *tokenRevoker) refusals() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.refused
}

func isPatch(r *http.Request) bool { return r.Method == http.MethodPatch }

// TestUploadRenewsRefusedToken: a registry that refuses the token of a blob upload's PATCH
// (it expired mid-copy) gets a new token and the upload again: at once with a source that can
// be rewound, through a new stream (types.StreamRetryError) with one that cannot. A recorded
// chunked session is continued where the registry stopped, not sent again from the start.
// Before, the refused PATCH failed the copy with "authentication required".
func TestUploadRenewsRefusedToken(t *testing.T) {
	t.Parallel()
	small := bytes.Repeat([]byte("imgcopy token expiry "), 10000)
	big := bigBlob(41, 2*resume.MinSize+777)
	cases := []struct {
		name       string
		blob       []byte
		seekable   bool
		chunk      int64
		resume     bool
		nth        int   // the PATCH whose token is refused
		wantStream bool  // the first PutBlob asks for a new stream
		wantResume int64 // bytes the second attempt found at the registry
	}{
		{name: "one PATCH, seekable source", blob: small, seekable: true, nth: 1},
		{name: "one PATCH, stream", blob: small, nth: 1, wantStream: true},
		{name: "chunks, stream, session recorded", blob: big, chunk: resume.MinSize / 2, resume: true, nth: 3, wantStream: true, wantResume: resume.MinSize},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			watch := newPatchWatch()
			rev := &tokenRevoker{match: isPatch, nth: tc.nth}
			reg := testregistry.Start(t, testregistry.Options{BearerToken: true, Filesystem: true,
				Wrap: func(h http.Handler) http.Handler { return rev.wrap(watch.wrap(h)) }})
			rev.host = reg.Host
			ctx := testContext(t)
			sys := anonSys()
			if tc.resume {
				sys = resumeSys(t.TempDir())
			}
			sys.UploadChunkSize = tc.chunk
			dest, err := mustParse(t, "//"+reg.Host+"/exp/upload:v1").NewImageDestination(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			info := types.BlobInfo{Digest: digest.FromBytes(tc.blob), Size: int64(len(tc.blob))}
			source := func() io.Reader {
				if tc.seekable {
					return bytes.NewReader(tc.blob)
				}
				return onlyReader{bytes.NewReader(tc.blob)}
			}

			var resumed int64
			opts := types.PutBlobOptions{Resumed: func(n int64) { resumed = n }}
			stored, err := dest.PutBlob(ctx, source(), info, opts)
			var sre *types.StreamRetryError
			if tc.wantStream {
				if !errors.As(err, &sre) || !errors.Is(err, types.ErrUnauthorized) {
					t.Fatalf("PutBlob with a refused token: %v (%T), want a StreamRetryError", err, err)
				}
				opts.Attempt = 1
				stored, err = dest.PutBlob(ctx, source(), info, opts)
			}
			if err != nil {
				t.Fatalf("PutBlob: %v", err)
			}
			if stored.Digest != info.Digest || stored.Size != info.Size {
				t.Fatalf("stored %+v, want %+v", stored, info)
			}
			if n := rev.refusals(); n != 1 {
				t.Errorf("%d requests refused, want 1", n)
			}
			if resumed != tc.wantResume {
				t.Errorf("the new attempt found %d bytes at the registry, want %d", resumed, tc.wantResume)
			}
			// The refused PATCH brought nothing: every byte went to the registry once.
			if sent, _ := watch.take(); sent != info.Size {
				t.Errorf("%d bytes uploaded, want %d (the blob once)", sent, info.Size)
			}
			if size, ok, err := dest.(*destination).blobExists(ctx, info.Digest); err != nil || !ok || size != info.Size {
				t.Errorf("the registry holds the blob: %v, size %d, %v", ok, size, err)
			}
		})
	}
}

// TestConcurrentRefusalsShareNewToken: requests in flight with the same token that the
// registry all refuse each retry, with the token the first refusal fetched: a later refusal
// of the old token neither gives up (no token cached at that moment) nor drops the new token.
// Before, the second refusal seen while the first was fetching a new token failed its request.
func TestConcurrentRefusalsShareNewToken(t *testing.T) {
	t.Parallel()
	scopes := []scope{{repo: "a/b", actions: "pull"}}
	key := scopeKey(scopes)
	refusal := func(sent string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, "http://registry.test/v2/a/b/blobs/x", nil)
		req.Header.Set("Authorization", "Bearer "+sent)
		h := http.Header{}
		h.Set("WWW-Authenticate", `Bearer realm="http://registry.test/token",service="registry.test"`)
		return &http.Response{StatusCode: http.StatusUnauthorized, Header: h, Request: req}
	}
	cases := []struct {
		name      string
		cached    string // the token cached when the second refusal arrives, "" none
		wantCache string // the token cached afterwards
	}{
		{name: "before the new token arrived", cached: "", wantCache: ""},
		{name: "after the new token arrived", cached: "T2", wantCache: "T2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newAuthenticator(anonSys(), "registry.test", "a/b")
			a.setChallenge(challenge{Scheme: "bearer", Params: map[string]string{"realm": "http://registry.test/token"}})
			a.tokens[key] = cachedToken{token: "T1", expires: farFuture}
			if !a.setChallenges(refusal("T1"), scopes) {
				t.Fatal("the first refusal of T1 is not retried")
			}
			if tc.cached != "" {
				a.tokens[key] = cachedToken{token: tc.cached, expires: farFuture}
			}
			if !a.setChallenges(refusal("T1"), scopes) {
				t.Error("the second refusal of T1 is not retried")
			}
			if got := a.tokens[key].token; got != tc.wantCache {
				t.Errorf("cached token %q, want %q", got, tc.wantCache)
			}
			// The new token refused too: dropped, and retried once more by its request.
			a.tokens[key] = cachedToken{token: "T3", expires: farFuture}
			if !a.setChallenges(refusal("T3"), scopes) {
				t.Error("a refusal of the cached token is not retried")
			}
			if _, ok := a.tokens[key]; ok {
				t.Error("a refused token stays cached")
			}
		})
	}
}

var farFuture = time.Now().Add(time.Hour)
