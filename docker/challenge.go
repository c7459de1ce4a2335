package docker

import (
	"strings"
)

// challenge is one WWW-Authenticate challenge (RFC 7235): a scheme in lower case and its
// parameters with lower-case names.
type challenge struct {
	Scheme string
	Params map[string]string
}

// maxChallenges bounds the work done on a hostile header.
const maxChallenges = 16

// parseAuthHeader parses the WWW-Authenticate header values of a response into challenges,
// e.g. `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
// Several challenges may share one value, separated by commas. Malformed parts are skipped.
func parseAuthHeader(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		p := &headerParser{s: v}
		for len(out) < maxChallenges {
			c, ok := p.challenge()
			if !ok {
				break
			}
			out = append(out, c)
		}
	}
	return out
}

type headerParser struct {
	s string
	i int
}

// skipSpaceAndCommas skips separators and reports whether there was a comma among them.
func (p *headerParser) skipSpaceAndCommas() bool {
	comma := false
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		comma = comma || p.s[p.i] == ','
		p.i++
	}
	return comma
}

func (p *headerParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// isTokenChar reports whether c may appear in an RFC 7230 token (also allowing '/' for
// token68 values; the caller tells the two apart by what follows).
func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~/", c) >= 0
}

func (p *headerParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string starting at the opening quote.
func (p *headerParser) quoted() string {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\' && p.i < len(p.s):
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String() // unterminated: take what there is
}

// challenge reads one challenge; ok is false at the end of the input.
func (p *headerParser) challenge() (challenge, bool) {
	for {
		p.skipSpaceAndCommas()
		if p.i >= len(p.s) {
			return challenge{}, false
		}
		scheme := p.token()
		if scheme != "" {
			c := challenge{Scheme: strings.ToLower(scheme), Params: map[string]string{}}
			p.params(c.Params)
			return c, true
		}
		p.i++ // skip a character that cannot start a challenge
	}
}

// params reads auth-params (or a token68) until the next challenge or the end.
func (p *headerParser) params(into map[string]string) {
	first := true
	for {
		comma := p.skipSpaceAndCommas()
		if p.i >= len(p.s) {
			return
		}
		nameStart := p.i
		name := p.token()
		if name == "" {
			p.i++ // garbage: skip it
			continue
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '=' {
			if first && !comma { // a token68 right after the scheme, e.g. "Negotiate abc"
				first = false
				continue
			}
			p.i = nameStart // the next challenge's scheme
			return
		}
		eqs := 0
		for p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			eqs++
		}
		p.skipSpace()
		if first && !comma && (eqs > 1 || p.i >= len(p.s) || p.s[p.i] == ',') {
			first = false
			continue // a token68 with '=' padding, e.g. "Negotiate abc=="
		}
		first = false
		var value string
		if p.i < len(p.s) && p.s[p.i] == '"' {
			value = p.quoted()
		} else {
			value = p.token()
		}
		key := strings.ToLower(name)
		if _, dup := into[key]; !dup {
			into[key] = value
		}
	}
}

// pickChallenge chooses the challenge we can answer: Bearer over Basic.
func pickChallenge(cs []challenge) (challenge, bool) {
	for _, want := range []string{"bearer", "basic"} {
		for _, c := range cs {
			if c.Scheme == want {
				return c, true
			}
		}
	}
	return challenge{}, false
}
