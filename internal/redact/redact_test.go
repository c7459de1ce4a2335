package redact

import (
	"net/url"
	"testing"
)

func TestURL(t *testing.T) {
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
		if got := URL(u); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
		if got := RawURL(in); got != want {
			t.Errorf("RawURL(%q) = %q, want %q", in, got, want)
		}
	}
	if URL(nil) != "" {
		t.Error("nil URL")
	}
	if got := RawURL("https://host/%zz?token=SECRET"); got != "<invalid URL>" {
		t.Errorf("RawURL of an invalid URL = %q", got)
	}
}
