package docker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/internal/redact"
	"github.com/imgcopy/imgcopy/types"
)

// Paginated listings (tags, referrers) follow Link headers from page to page. A registry
// decides how many pages there are, so what a listing keeps in memory is bounded as a
// whole, not only per page: a hostile or broken registry that answers every page with a
// new Link and 4 MiB of entries would otherwise grow the list without end.
const (
	// maxTagPages bounds the tag-list pages followed through Link headers.
	maxTagPages = 10000
)

// The limits of a listing over all its pages; variables so that tests can lower them.
var (
	// maxTagListSize bounds the bytes of all the pages of one tag list together (a million
	// tags of 20 characters take 23 MiB).
	maxTagListSize = 32 << 20
	// maxTags bounds the tags of one repository.
	maxTags = 1 << 20
	// maxReferrersListSize bounds the bytes of all the pages of one referrers response.
	maxReferrersListSize = 32 << 20
	// maxReferrers bounds the referrers of one manifest (each is read on its own later).
	maxReferrers = 1 << 16
)

// pageBudget counts what a paginated listing has read so far against its limits.
type pageBudget struct {
	what               string // "tag list", "referrers list"
	maxBytes, maxItems int    // maxItems 0: no limit on the entries
	bytes, items       int
}

// add counts a page of n bytes holding items entries; it fails, wrapping types.ErrTooLarge,
// once the listing exceeds a limit.
func (b *pageBudget) add(n, items int) error {
	b.bytes += n
	b.items += items
	if b.bytes > b.maxBytes {
		return errors.Wrapf(types.ErrTooLarge, "the %s is larger than %d MiB", b.what, b.maxBytes>>20)
	}
	if b.maxItems > 0 && b.items > b.maxItems {
		return errors.Wrapf(types.ErrTooLarge, "the %s has more than %d entries", b.what, b.maxItems)
	}
	return nil
}

func (c *client) listTags(ctx context.Context) ([]string, error) {
	scopes := []scope{{repo: c.repo, actions: "pull"}}
	req := request{method: http.MethodGet, path: "/v2/" + c.repo + "/tags/list", scopes: scopes}
	var tags []string
	budget := pageBudget{what: "tag list", maxBytes: maxTagListSize, maxItems: maxTags}
	seen := map[string]bool{} // pages read: a Link back to one of them would loop forever
	for page := 0; page < maxTagPages; page++ {
		resp, err := c.do(ctx, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, c.statusError(resp, kindRepository)
		}
		body, err := readMetadata(resp, iolimits.MaxManifestBodySize)
		resp.Body.Close()
		if err != nil {
			return nil, errors.Wrap(err, "reading tag list")
		}
		var list struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, errors.Wrap(err, "decoding tag list")
		}
		if err := budget.add(len(body), len(list.Tags)); err != nil {
			return nil, err
		}
		tags = append(tags, list.Tags...)
		next, err := c.nextLink(resp)
		if err != nil || next == nil {
			return tags, err
		}
		seen[resp.Request.URL.String()] = true
		if seen[next.String()] {
			return nil, errors.Errorf("the tag list's Link header leads back to page %s, read already: the registry's pagination loops", redact.URL(next))
		}
		req = request{method: http.MethodGet, url: next, scopes: scopes}
	}
	return nil, errors.Errorf("more than %d pages of tags", maxTagPages)
}

// nextLink returns the rel="next" target of resp's Link header, or nil. Only its path and
// query are used, on the registry's own scheme and host, as skopeo does: a Link naming
// another host (or plain HTTP) would send the listing's credentials there, and a registry
// behind a proxy may name its internal address.
func (c *client) nextLink(resp *http.Response) (*url.URL, error) {
	for _, v := range resp.Header.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if !ok || !relNext(params) {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				return nil, errors.Errorf("invalid Link header target %q", truncate(target))
			}
			u, err := resp.Request.URL.Parse(target[1 : len(target)-1])
			if err != nil {
				return nil, errors.Wrap(err, "invalid Link header")
			}
			return c.base.ResolveReference(&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}), nil
		}
	}
	return nil, nil
}

// relNext reports whether the parameters of a Link value (`rel="next"; title=...`) make it the
// next page. RFC 8288 lets rel be a token or a quoted list of space-separated relation types,
// compared without regard to case: `rel=next` and `rel="Next"` are next pages too.
func relNext(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
			continue
		}
		for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
			if strings.EqualFold(rel, "next") {
				return true
			}
		}
	}
	return false
}
