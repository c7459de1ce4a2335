package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// several is a failure of several images, as sync.FailedError: one line per failure.
type several []error

func (s several) Error() string {
	var b strings.Builder
	b.WriteString("several images failed:")
	for _, err := range s {
		b.WriteString("\n  " + err.Error())
	}
	return b.String()
}

func (s several) Unwrap() []error { return s }

// TestHintOfSeveralFailures checks that a sync's failures of several images get a hint only
// when it fits every one of them, printed after the list rather than on its last line.
func TestHintOfSeveralFailures(t *testing.T) {
	t.Parallel()
	unauthorized := errors.Wrap(types.ErrUnauthorized, "listing tags of h/private")
	cases := []struct {
		name     string
		errs     []error
		wantHint bool
	}{
		{"mixed causes", []error{unauthorized, errors.New("GET h/v2/x/tags/list: 500 Internal Server Error")}, false},
		{"one cause", []error{unauthorized, errors.Wrap(types.ErrUnauthorized, "listing tags of h/other")}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			reportError(&out, context.Background(), several(tc.errs), false)
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			last := lines[len(lines)-1]
			hasHint := strings.Contains(out.String(), "imgcopy login")
			if hasHint != tc.wantHint {
				t.Fatalf("hint printed: %v, want %v:\n%s", hasHint, tc.wantHint, out.String())
			}
			if hasHint && !strings.HasPrefix(last, "pass --src-creds") {
				t.Errorf("the hint is not on a line of its own after the list:\n%s", out.String())
			}
		})
	}
}
