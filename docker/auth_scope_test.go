package docker

import (
	"bytes"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/types"
)

// pullOnly grants pull, and nothing else, on every repository.
func pullOnly(_, _ string, actions []string) []string {
	for _, a := range actions {
		if a == "pull" {
			return []string{"pull"}
		}
	}
	return nil
}

// TestPushRefusedByScope: a registry whose token server grants pull but not push (the user may
// only read the repository) refuses the upload with 401 insufficient_scope. With credentials
// that is a denial naming the repository (types.ErrDenied: the credentials were accepted),
// not "authentication required", whose advice to log in misleads; anonymously it stays
// ErrUnauthorized. Both are auth errors (exit code 4).
func TestPushRefusedByScope(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		opts       testregistry.Options
		sys        *types.SystemContext
		want, not  error
		wantPhrase string
	}{
		{name: "with credentials", opts: testregistry.Options{BasicAuth: testUsers},
			sys:  &types.SystemContext{DockerAuthConfig: &types.DockerAuthConfig{Username: "alice", Password: testUsers["alice"]}},
			want: types.ErrDenied, not: types.ErrUnauthorized, wantPhrase: "access denied to "},
		{name: "anonymous", sys: anonSys(), want: types.ErrUnauthorized, not: types.ErrDenied, wantPhrase: "authentication required for "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.BearerToken, tc.opts.Grant = true, pullOnly
			reg := testregistry.Start(t, tc.opts)
			ctx := testContext(t)
			dest, err := mustParse(t, "//"+reg.Host+"/readonly/repo:v1").NewImageDestination(ctx, tc.sys)
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			blob := []byte("a blob the user may not push")
			_, err = dest.PutBlob(ctx, bytes.NewReader(blob), types.BlobInfo{Digest: digest.FromBytes(blob), Size: int64(len(blob))}, types.PutBlobOptions{})
			if !errors.Is(err, tc.want) || errors.Is(err, tc.not) {
				t.Fatalf("push refused by scope: %v, want %v and not %v", err, tc.want, tc.not)
			}
			if types.Classify(err) != types.ClassAuth {
				t.Errorf("class %v, want auth", types.Classify(err))
			}
			if !strings.Contains(err.Error(), tc.wantPhrase+reg.Host+"/readonly/repo") {
				t.Errorf("error %q does not say %q for the repository", err, tc.wantPhrase)
			}
		})
	}
}
