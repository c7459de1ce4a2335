package docker

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/types"
)

func TestParseReference(t *testing.T) {
	t.Parallel()
	const dg = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	cases := []struct {
		in                              string
		wantString, registry, api, repo string
		tag, digest                     string
		wantErr                         string
	}{
		{in: "//busybox", wantString: "//busybox:latest", registry: "docker.io", api: "registry-1.docker.io", repo: "library/busybox", tag: "latest"},
		{in: "//docker.io/library/busybox:1.36", wantString: "//busybox:1.36", registry: "docker.io", api: "registry-1.docker.io", repo: "library/busybox", tag: "1.36"},
		{in: "//user/img", wantString: "//user/img:latest", registry: "docker.io", api: "registry-1.docker.io", repo: "user/img", tag: "latest"},
		{in: "//quay.io/org/repo:v1", wantString: "//quay.io/org/repo:v1", registry: "quay.io", api: "quay.io", repo: "org/repo", tag: "v1"},
		{in: "//127.0.0.1:5000/a/b@" + dg, wantString: "//127.0.0.1:5000/a/b@" + dg, registry: "127.0.0.1:5000", api: "127.0.0.1:5000", repo: "a/b", digest: dg},
		{in: "//localhost:5000/a:t@" + dg, wantString: "//localhost:5000/a:t@" + dg, registry: "localhost:5000", api: "localhost:5000", repo: "a", tag: "t", digest: dg},
		{in: "//docker.io/library/quay.io", wantString: "//docker.io/library/quay.io:latest", registry: "docker.io", api: "registry-1.docker.io", repo: "library/quay.io", tag: "latest"},
		{in: "//redis:7", wantString: "//redis:7", registry: "docker.io", api: "registry-1.docker.io", repo: "library/redis", tag: "7"},
		{in: "//[::1]:5000/a/b:v1", wantString: "//[::1]:5000/a/b:v1", registry: "[::1]:5000", api: "[::1]:5000", repo: "a/b", tag: "v1"},
		{in: "//::1:5000/a/b:v1", wantErr: "write an IPv6 address in brackets"},
		{in: "//[::1]:5000", wantErr: `"[::1]:5000" names no repository: for a repository on the registry [::1]:5000 write docker://[::1]:5000/REPOSITORY[:TAG]`},
		{in: "busybox", wantErr: `does not start with "//"`},
		{in: "//127.0.0.1:5000", wantErr: `"127.0.0.1:5000" names no repository: read as an image it would be docker.io/library/127.0.0.1:5000 on Docker Hub; for a repository on the registry 127.0.0.1:5000 write docker://127.0.0.1:5000/REPOSITORY[:TAG]`},
		{in: "//localhost", wantErr: "names no repository"},
		{in: "//registry.example", wantErr: "names no repository"},
		{in: "//localhost:5000@" + dg, wantErr: "for a repository on the registry localhost:5000 write"},
		{in: "//myhost:5000", wantString: "//myhost:5000", registry: "docker.io", api: "registry-1.docker.io", repo: "library/myhost", tag: "5000"},
		{in: "//", wantErr: "parsing docker reference"},
		{in: "//a/UPPER", wantErr: "parsing docker reference"},
		{in: "//a@sha256:short", wantErr: "parsing docker reference"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			ref, err := Transport.ParseReference(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := ref.(reference)
			if got := ref.StringWithinTransport(); got != tc.wantString {
				t.Errorf("StringWithinTransport = %q, want %q", got, tc.wantString)
			}
			if r.registry() != tc.registry || r.apiHost() != tc.api || r.repo() != tc.repo || r.tag() != tc.tag || r.digest().String() != tc.digest {
				t.Errorf("parsed %s %s %s %s %s", r.registry(), r.apiHost(), r.repo(), r.tag(), r.digest())
			}
			if types.ImageName(ref) != "docker:"+tc.wantString {
				t.Errorf("ImageName = %q", types.ImageName(ref))
			}
			again, err := Transport.ParseReference(ref.StringWithinTransport())
			if err != nil || again.StringWithinTransport() != ref.StringWithinTransport() {
				t.Errorf("round trip: %v, %v", again, err)
			}
		})
	}
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func FuzzParseReference(f *testing.F) {
	for _, s := range readLines(f, "testdata/references.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := Transport.ParseReference(s)
		if err != nil {
			return
		}
		again, err := Transport.ParseReference(ref.StringWithinTransport())
		if err != nil {
			t.Fatalf("reparsing %q (from %q): %v", ref.StringWithinTransport(), s, err)
		}
		if again.StringWithinTransport() != ref.StringWithinTransport() {
			t.Fatalf("round trip %q -> %q", ref.StringWithinTransport(), again.StringWithinTransport())
		}
		r := ref.(reference)
		if r.repo() == "" || r.registry() == "" || (r.tag() == "" && r.digest() == "") {
			t.Fatalf("incomplete reference from %q", s)
		}
	})
}
