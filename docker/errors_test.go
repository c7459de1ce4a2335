package docker

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseErrorBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file string
		want []string // rendered entries
	}{
		{file: "manifest-unknown.json", want: []string{`MANIFEST_UNKNOWN: manifest unknown ({"Tag":"latest"})`}},
		{file: "denied.json", want: []string{"DENIED: requested access to the resource is denied"}},
		{file: "toomanyrequests.json", want: []string{"TOOMANYREQUESTS: You have reached your pull rate limit. (see https://www.docker.com/increase-rate-limit)"}},
		{file: "token-details.json", want: []string{"incorrect username or password"}},
		{file: "html.txt", want: nil},
		{file: "plain.txt", want: []string{"upstream connect error"}},
		{file: "truncated.json", want: []string{`{"errors":[{"code":`}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join("testdata", "error-bodies", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range parseErrorBody(b) {
				got = append(got, d.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzParseErrorBody(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "error-bodies", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range parseErrorBody(b) {
			s := d.String()
			if len(d.Detail) > 0 && len(compactDetail(d.Detail)) > maxDetailLen+len("…") {
				t.Fatalf("detail not capped: %d bytes", len(compactDetail(d.Detail)))
			}
			_ = s
		}
	})
}

func FuzzParseAuthHeader(f *testing.F) {
	for _, s := range readLines(f, "testdata/auth-headers.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs := parseAuthHeader([]string{s, s})
		if len(cs) > maxChallenges {
			t.Fatalf("%d challenges", len(cs))
		}
		for _, c := range cs {
			if c.Scheme == "" || c.Scheme != strings.ToLower(c.Scheme) {
				t.Fatalf("bad scheme %q", c.Scheme)
			}
			for k := range c.Params {
				if k == "" || k != strings.ToLower(k) {
					t.Fatalf("bad param name %q", k)
				}
			}
		}
	})
}

func TestSanitizeURL(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"https://user:pw@host:5000/v2/a/blobs/x?sig=SECRET#frag": "https://host:5000/v2/a/blobs/x",
		"http://host/v2/": "http://host/v2/",
		"https://storage.example/b%2Fc?X-Amz-Token=1": "https://storage.example/b%2Fc",
	}
	for in, want := range cases {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := sanitizeURL(u); got != want {
			t.Errorf("sanitizeURL(%q) = %q, want %q", in, got, want)
		}
	}
	if sanitizeURL(nil) != "" {
		t.Error("nil URL")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"999999999", maxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range cases {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	t.Parallel()
	p := retryPolicy{times: 5, delay: 100 * time.Millisecond}
	for attempt, base := range []time.Duration{100, 200, 400, 800} {
		base *= time.Millisecond
		for i := 0; i < 20; i++ {
			if d := p.backoff(attempt); d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, base/2, base)
			}
		}
	}
	if d := p.backoff(40); d > maxRetryDelay {
		t.Errorf("backoff not capped: %v", d)
	}
}

func TestCheckContentRange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v            string
		offset, size int64
		ok           bool
	}{
		{"bytes 10-99/100", 10, 100, true},
		{"bytes 10-99/*", 10, 100, true},
		{"bytes 10-99/100", 10, -1, true},
		{"bytes 0-99/100", 10, 100, false},
		{"bytes 10-99/101", 10, 100, false},
		{"", 10, 100, false},
		{"items 10-99/100", 10, 100, false},
	}
	for _, tc := range cases {
		if err := checkContentRange(tc.v, tc.offset, tc.size); (err == nil) != tc.ok {
			t.Errorf("checkContentRange(%q, %d, %d) = %v", tc.v, tc.offset, tc.size, err)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "127.1.2.3": true, "[::1]:5000": true,
		"registry-1.docker.io": false, "10.0.0.1:5000": false, "localhost.example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}

func TestErrorDetailIsValidUTF8Capped(t *testing.T) {
	t.Parallel()
	long := `{"errors":[{"code":"X","message":"m","detail":"` + strings.Repeat("a", 1000) + `"}]}`
	ds := parseErrorBody([]byte(long))
	if len(ds) != 1 || !utf8.ValidString(ds[0].String()) || len(ds[0].String()) > 300 {
		t.Errorf("detail not capped: %q", ds)
	}
}
