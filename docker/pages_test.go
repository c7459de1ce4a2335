package docker

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/imgcopy/imgcopy/types"
)

// lowerLimits sets the listing limits to small values for one test, which must not be
// parallel (no parallel test runs before the sequential ones are done).
func lowerLimits(t *testing.T) {
	old := [4]int{maxTagListSize, maxTags, maxReferrersListSize, maxReferrers}
	maxTagListSize, maxTags, maxReferrersListSize, maxReferrers = 1<<20, 1000, 1<<20, 100
	t.Cleanup(func() { maxTagListSize, maxTags, maxReferrersListSize, maxReferrers = old[0], old[1], old[2], old[3] })
}

// TestListTagsBounded: a registry that answers page after page, each with a new Link, makes
// the listing fail with types.ErrTooLarge once it holds more than the limits (lowered here),
// instead of growing without end. Each server stops after enough pages to pass a limit, so
// that a client without one ends (with every tag) rather than run for ever.
func TestListTagsBounded(t *testing.T) {
	// Not parallel: lowerLimits.
	lowerLimits(t)
	big := `"` + strings.Repeat("t", 10000) + `-%d-%d"` // ~100 KiB of long tags per page
	cases := []struct {
		name    string
		pages   int
		perPage int
		tag     string
		wantMsg string
	}{
		{"many bytes", 20, 10, big, "larger than 1 MiB"},
		{"many tags", 6, 300, `"t"`, "more than 1000 entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v2/a/b/tags/list" {
					return
				}
				page, _ := strconv.Atoi(r.URL.Query().Get("page"))
				if page+1 < tc.pages {
					w.Header().Set("Link", fmt.Sprintf(`</v2/a/b/tags/list?page=%d>; rel="next"`, page+1))
				}
				var b strings.Builder
				b.WriteString(`{"name":"a/b","tags":[`)
				for i := 0; i < tc.perPage; i++ {
					if i > 0 {
						b.WriteByte(',')
					}
					if strings.Contains(tc.tag, "%") {
						fmt.Fprintf(&b, tc.tag, page, i)
					} else {
						b.WriteString(tc.tag)
					}
				}
				b.WriteString("]}")
				_, _ = w.Write([]byte(b.String()))
			})
			tags, err := mustParse(t, "//"+srv.host+"/a/b").(types.TagLister).ListTags(testContext(t), anonSys())
			if !errors.Is(err, types.ErrTooLarge) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("ListTags = %d tags, %v; want types.ErrTooLarge saying %q", len(tags), err, tc.wantMsg)
			}
			if n := srv.count(http.MethodGet, "/tags/list"); n >= tc.pages {
				t.Errorf("read all %d pages, want it to stop at the limit", n)
			}
		})
	}
}

// TestListTagsLinkStaysOnRegistry: a Link naming another host or plain HTTP is followed on
// the registry itself (its path and query only), so that neither the request nor the
// credentials it carries go elsewhere.
func TestListTagsLinkStaysOnRegistry(t *testing.T) {
	t.Parallel()
	other := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"name":"a/b","tags":["planted"]}`))
	})
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/a/b/tags/list" {
			return
		}
		if r.URL.Query().Get("last") == "" {
			w.Header().Set("Link", `<http://`+other.host+`/v2/a/b/tags/list?last=t1>; rel="next"`)
			_, _ = w.Write([]byte(`{"name":"a/b","tags":["t1"]}`))
			return
		}
		_, _ = w.Write([]byte(`{"name":"a/b","tags":["t2"]}`))
	})
	tags, err := mustParse(t, "//"+srv.host+"/a/b").(types.TagLister).ListTags(testContext(t), anonSys())
	if err != nil || !slices.Equal(tags, []string{"t1", "t2"}) {
		t.Errorf("ListTags = %v, %v; want [t1 t2]", tags, err)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other host got %d request(s)", n)
	}
}

// TestReferrersListBounded: referrers pages that keep coming fail with types.ErrTooLarge once
// they add up to more than a limit (lowered here): few entries with large annotations, or
// many small ones.
func TestReferrersListBounded(t *testing.T) {
	// Not parallel: lowerLimits.
	lowerLimits(t)
	cases := []struct {
		name       string
		pages      int
		perPage    int
		annotation string
		wantMsg    string
	}{
		{"many bytes", 20, 1, strings.Repeat("a", 100<<10), "referrers list is larger than 1 MiB"},
		{"many entries", 5, 40, "", "referrers list has more than 100 entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if !strings.Contains(r.URL.Path, "/referrers/") {
					return
				}
				page, _ := strconv.Atoi(r.URL.Query().Get("page"))
				if page+1 < tc.pages {
					w.Header().Set("Link", fmt.Sprintf(`<%s?page=%d>; rel="next"`, r.URL.Path, page+1))
				}
				w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
				var b strings.Builder
				b.WriteString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`)
				for i := 0; i < tc.perPage; i++ {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":10,"annotations":{"x":%q}}`,
						digestOf([]byte(fmt.Sprintf("%d-%d", page, i))), tc.annotation)
				}
				b.WriteString("]}")
				_, _ = w.Write([]byte(b.String()))
			})
			c, err := newClient(anonSys(), srv.host, srv.host, "a/b")
			if err != nil {
				t.Fatal(err)
			}
			descs, _, err := c.referrersAPI(testContext(t), digestOf([]byte("subject")), []scope{{repo: "a/b", actions: "pull"}})
			if !errors.Is(err, types.ErrTooLarge) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("referrersAPI = %d referrers, %v; want types.ErrTooLarge saying %q", len(descs), err, tc.wantMsg)
			}
			if n := srv.count(http.MethodGet, "/referrers/"); n >= tc.pages {
				t.Errorf("read all %d pages, want it to stop at the limit", n)
			}
		})
	}
}

// TestListImagesWarnsOnceAboutInvalidTags: a tag list full of invalid tags gives one warning,
// not one line per tag (a hostile registry could send a million).
func TestListImagesWarnsOnceAboutInvalidTags(t *testing.T) {
	// Not parallel: it hooks the global logger.
	hook := logtest.NewGlobal()
	t.Cleanup(func() { logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{}) })
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			tags := []string{`"ok"`}
			for i := range 1000 {
				tags = append(tags, fmt.Sprintf(`"bad tag %d"`, i))
			}
			_, _ = w.Write([]byte(`{"name":"a/b","tags":[` + strings.Join(tags, ",") + `]}`))
		}
	})
	got, err := mustParse(t, "//"+srv.host+"/a/b").(types.ImageLister).ListImages(testContext(t), anonSys())
	if err != nil || len(got) != 1 {
		t.Fatalf("ListImages = %v, %v; want the one valid tag", got, err)
	}
	warnings := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "invalid tag") {
			warnings++
			if e.Data["count"] != 1000 {
				t.Errorf("warning %q counts %v invalid tags, want 1000", e.Message, e.Data["count"])
			}
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings about invalid tags, want 1", warnings)
	}
}

// TestNextLinkForms: the forms of a Link header registries send, or RFC 8288 allows, lead to
// the next page on the registry's own host; a rel other than next leads nowhere.
func TestNextLinkForms(t *testing.T) {
	t.Parallel()
	base, _ := url.Parse("https://registry.example")
	c := &client{base: base}
	const next = "https://registry.example/v2/a/b/tags/list?last=t2&n=2"
	cases := map[string]struct {
		links []string
		want  string
	}{
		"relative":             {[]string{`</v2/a/b/tags/list?last=t2&n=2>; rel="next"`}, next},
		"absolute, other host": {[]string{`<http://10.0.0.1:5000/v2/a/b/tags/list?last=t2&n=2>; rel="next"`}, next},
		"token form":           {[]string{`</v2/a/b/tags/list?last=t2&n=2>; rel=next`}, next},
		"other case, spaces":   {[]string{`</v2/a/b/tags/list?last=t2&n=2> ; REL = "Next"`}, next},
		"list of relations":    {[]string{`</v2/a/b/tags/list?last=t2&n=2>; rel="last next"`}, next},
		"after a prev link":    {[]string{`</v2/a/b/tags/list?last=t0>; rel="prev", </v2/a/b/tags/list?last=t2&n=2>; rel="next"`}, next},
		"in a second header":   {[]string{`</v2/a/b/tags/list?last=t0>; rel="prev"`, `</v2/a/b/tags/list?last=t2&n=2>; rel="next"`}, next},
		"more parameters":      {[]string{`</v2/a/b/tags/list?last=t2&n=2>; type="application/json"; rel="next"`}, next},
		"prev only":            {[]string{`</v2/a/b/tags/list?last=t0>; rel="prev"`}, ""},
		"nextpage is not next": {[]string{`</v2/a/b/tags/list?last=t0>; rel="nextpage"`}, ""},
		"none":                 {nil, ""},
	}
	for name, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, "https://registry.example/v2/a/b/tags/list?n=2", nil)
		resp := &http.Response{Header: http.Header{"Link": tc.links}, Request: req}
		u, err := c.nextLink(resp)
		got := ""
		if u != nil {
			got = u.String()
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: nextLink = %q, %v; want %q", name, got, err, tc.want)
		}
	}
}
