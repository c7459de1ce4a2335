package credentials

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgcopy/imgcopy/types"
)

// TestHelperAnswerReused: the lookups of one process (a sync looks credentials up per image
// and side) run a credential helper once per host while its answer is young, a "not found"
// included; once it is older than helperCacheTTL the helper is asked again.
func TestHelperAnswerReused(t *testing.T) {
	// Not parallel: setupEnv uses t.Setenv, and helperCacheTTL is shared.
	e := setupEnv(t)
	writeFile(t, filepath.Join(e.runtime, "containers", "auth.json"),
		`{"credHelpers":{"reg.example:5000":"fake","other.example":"fake"}}`, 0o600)
	calls := func() int {
		log, _ := os.ReadFile(e.helperLog)
		return strings.Count(string(log), "get ")
	}
	want := types.DockerAuthConfig{Username: "helperuser", Password: "helperpass"}
	for range 3 {
		got, err := Lookup(context.Background(), nil, "reg.example:5000", "a/b")
		if err != nil || got != want {
			t.Fatalf("Lookup: %+v, %v", got, err)
		}
	}
	for range 2 {
		if got, err := Lookup(context.Background(), nil, "other.example", "a/b"); err != nil || got != (types.DockerAuthConfig{}) {
			t.Fatalf("Lookup of a host the helper does not know: %+v, %v", got, err)
		}
	}
	if n := calls(); n != 2 {
		t.Errorf("the helper ran %d times for 5 lookups of 2 hosts, want 2", n)
	}

	old := helperCacheTTL
	t.Cleanup(func() { helperCacheTTL = old })
	helperCacheTTL = 0
	if got, err := Lookup(context.Background(), nil, "reg.example:5000", "a/b"); err != nil || got != want {
		t.Fatalf("Lookup: %+v, %v", got, err)
	}
	if n := calls(); n != 3 {
		t.Errorf("an answer older than helperCacheTTL was reused: %d helper runs, want 3", n)
	}
}
