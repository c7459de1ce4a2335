package iolimits

import (
	"bytes"
	"testing"

	"github.com/pkg/errors"
)

func TestReadAtMost(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		limit   int
		wantErr error
	}{
		{name: "under", n: 10, limit: 11},
		{name: "exactly at limit", n: 11, limit: 11},
		{name: "one over", n: 12, limit: 11, wantErr: ErrTooLarge},
		{name: "empty", n: 0, limit: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ReadAtMost(bytes.NewReader(make([]byte, tc.n)), tc.limit)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(b) != tc.n {
				t.Fatalf("got %d bytes, %v", len(b), err)
			}
		})
	}
}
