package credentials

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// TestHostileHelper: a credential helper that hangs, floods its output or fails with a long
// message ends the lookup with a clear, short error, in bounded time and memory; a cancelled
// context stops it too.
func TestHostileHelper(t *testing.T) {
	// Not parallel: setupEnv uses t.Setenv, and helperTimeout is shared.
	old := helperTimeout
	t.Cleanup(func() { helperTimeout = old })
	cases := []struct {
		name     string
		script   string
		timeout  time.Duration // helperTimeout, 30s when 0
		canceled bool
		wantErr  error
		wantMsg  string
	}{
		// The sleep is a child of the shell, so it keeps the output open after the shell is
		// killed; without a bound the lookup would wait for it.
		{name: "hangs", script: "sleep 20", timeout: 300 * time.Millisecond, wantMsg: "no answer within 300ms"},
		{name: "hangs, context cancelled", script: "sleep 20", canceled: true, wantErr: context.Canceled},
		{name: "floods its output", script: "head -c 50000000 /dev/zero | tr '\\0' x", wantErr: types.ErrTooLarge},
		{name: "fails with a long message", script: "head -c 100000 /dev/zero | tr '\\0' x; exit 1", wantMsg: "error getting credentials"},
		{name: "prints credentials, then fails", script: `printf '{"ServerURL":"reg.example","Username":"u","Secret":"hunter2-s3cret"}'; exit 1`, wantMsg: "looks like a credential (not shown)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			helperTimeout = tc.timeout
			if helperTimeout == 0 {
				helperTimeout = 30 * time.Second
			}
			e := setupEnv(t)
			writeFile(t, filepath.Join(filepath.Dir(e.home), "bin", "docker-credential-hostile"), "#!/bin/sh\n"+tc.script+"\n", 0o700)
			authFile := filepath.Join(t.TempDir(), "auth.json")
			writeFile(t, authFile, `{"credHelpers":{"reg.example":"hostile"}}`, 0o600)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.canceled {
				cancel()
			}
			start := time.Now()
			_, err := Lookup(ctx, &types.SystemContext{AuthFilePath: authFile}, "reg.example", "a/b")
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Lookup: %v; want %v saying %q", err, tc.wantErr, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error quotes the secret: %v", err)
			}
			if len(err.Error()) > 512 {
				t.Errorf("the error is %d bytes long: %.200s…", len(err.Error()), err)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("Lookup took %v", d)
			}
		})
	}
}
