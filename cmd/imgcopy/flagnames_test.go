package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestFlagNamesComputedOnce: every flag of the app and its commands answers Names from a
// slice computed once, not a new one per call (urfave/cli calls it thousands of times a run).
func TestFlagNamesComputedOnce(t *testing.T) {
	t.Parallel()
	app := newApp(newHarness(t).env)
	lists := map[string][]cli.Flag{"imgcopy": app.Flags}
	for _, c := range app.Commands {
		lists[c.Name] = c.Flags
	}
	for cmd, flags := range lists {
		for _, f := range flags {
			a, b := f.Names(), f.Names()
			if len(a) == 0 || &a[0] != &b[0] {
				t.Errorf("%s: flag %v: names computed on every call (%T)", cmd, a, f)
			}
		}
	}
}

func TestFlagNamesAsCLI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		aliases []string
	}{
		{"all", []string{"a"}},
		{"quiet", nil},
		{"v1-style, x", []string{"y z", ",w"}},
	} {
		if got, want := flagNames(tc.name, tc.aliases), cli.FlagNames(tc.name, tc.aliases); !slices.Equal(got, want) {
			t.Errorf("flagNames(%q, %q) = %q, cli.FlagNames gives %q", tc.name, tc.aliases, got, want)
		}
	}
}

// BenchmarkCLICopyParse measures the command line's own cost of a copy (the copy is faked).
func BenchmarkCLICopyParse(b *testing.B) {
	for b.Loop() {
		h := newHarness(nil)
		h.run("copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", "dir:/a", "oci:/b:v1")
	}
}
