package docker

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestTokenServerAnswers: what a token endpoint answers, and what becomes of it. A 503 is
// retried; a 500 that stays is an error that names the repository the token was for; a
// response with only access_token (OAuth2) is a token; an expires_in of centuries is a token
// kept (not one whose expiry overflowed into the past, fetched again for every request), as
// is one sent as a string, one too large for an int, and one of no known form (the default
// lifetime then); an
// OAuth2 refusal of an identity token
// (400 invalid_grant: expired or revoked) is an authentication failure (exit code 4) with the
// endpoint's reason, asked once, rather than an unclassified "400 Bad Request".
func TestTokenServerAnswers(t *testing.T) {
	t.Parallel()
	identity := func() *types.SystemContext {
		return &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{IdentityToken: "id-token"}}
	}
	cases := []struct {
		name       string
		answer     func(n int32, w http.ResponseWriter)
		sys        *types.SystemContext
		wantErr    error // nil: the manifest is read; else an error that matches it
		wantClass  types.ErrorClass
		wantPhrase string
		wantAsked  int32
		opens      int // sources opened one after the other (1 when 0)
	}{
		{name: "503 twice, then a token", sys: anonSys(), wantAsked: 3, answer: func(n int32, w http.ResponseWriter) {
			if n <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`{"token":"T"}`))
		}},
		{name: "500 always", sys: anonSys(), wantErr: errTokenStatus, wantClass: types.ClassOther, wantAsked: 4,
			wantPhrase: "requesting a token for HOST/a/b: GET ", answer: func(_ int32, w http.ResponseWriter) {
				w.WriteHeader(http.StatusInternalServerError)
			}},
		{name: "access_token only", sys: anonSys(), wantAsked: 1, answer: func(_ int32, w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"access_token":"T","expires_in":300}`))
		}},
		{name: "expires_in beyond any real lifetime", sys: anonSys(), opens: 2, wantAsked: 1, answer: func(_ int32, w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"token":"T","expires_in":99999999999}`))
		}},
		{name: "expires_in as a string", sys: anonSys(), opens: 2, wantAsked: 1, answer: func(_ int32, w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"token":"T","expires_in":"300"}`))
		}},
		{name: "expires_in too large for an int", sys: anonSys(), opens: 2, wantAsked: 1, answer: func(_ int32, w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"token":"T","expires_in":1e30}`))
		}},
		{name: "expires_in neither number nor string", sys: anonSys(), wantAsked: 1, answer: func(_ int32, w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"token":"T","expires_in":{"seconds":300}}`))
		}},
		{name: "identity token refused with invalid_grant", sys: identity(), wantErr: types.ErrUnauthorized, wantClass: types.ClassAuth, wantAsked: 1,
			wantPhrase: "authentication required for HOST/a/b: POST ", answer: func(_ int32, w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"refresh token is expired"}`))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := newTestImage(t, 36, "amd64")
			var asked atomic.Int32
			var srv *fakeServer
			srv = newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					tc.answer(asked.Add(1), w)
					return
				}
				if r.Header.Get("Authorization") != "Bearer T" {
					w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+srv.host+`/token",service="fake"`)
					writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
					return
				}
				serveImage(img, w, r)
			})
			tc.sys.RetryDelay = time.Millisecond
			ctx := testContext(t)
			var err error
			for range max(tc.opens, 1) {
				var src types.ImageSource
				src, err = mustParse(t, "//"+srv.host+"/a/b:t").NewImageSource(ctx, tc.sys) // reads the manifest
				if err != nil {
					break
				}
				src.Close()
			}
			if got := asked.Load(); got != tc.wantAsked {
				t.Errorf("the token endpoint was asked %d times, want %d", got, tc.wantAsked)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("reading the manifest: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("reading the manifest succeeded")
			}
			if tc.wantErr != errTokenStatus && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if got := types.Classify(err); got != tc.wantClass {
				t.Errorf("class %v, want %v (%v)", got, tc.wantClass, err)
			}
			if phrase := strings.ReplaceAll(tc.wantPhrase, "HOST", srv.host); !strings.Contains(err.Error(), phrase) {
				t.Errorf("error %q does not say %q", err, phrase)
			}
		})
	}
}

// errTokenStatus stands for an error that matches no sentinel.
var errTokenStatus = errors.New("a token endpoint's status")
