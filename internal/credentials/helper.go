package credentials

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docker/docker-credential-helpers/client"
	helpercreds "github.com/docker/docker-credential-helpers/credentials"
	"github.com/pkg/errors"

	"github.com/imgcopy/imgcopy/types"
)

// dockerHubHelperURL is the server URL Docker stores Docker Hub credentials under.
const dockerHubHelperURL = "https://index.docker.io/v1/"

// identityTokenUser is the user name a helper returns when Secret is an identity token.
const identityTokenUser = "<token>"

// maxHelperOutput caps what is read of a helper's answer (credentials take a few KiB).
const maxHelperOutput = 1 << 20

// maxHelperMessage caps the part of a failing helper's output an error quotes.
const maxHelperMessage = 256

// helperTimeout bounds one call of a credential helper: one that waits for a locked keychain
// or a daemon that is not running would otherwise stop imgcopy for good. A variable for tests.
var helperTimeout = time.Minute

// helperError is a credential helper failure other than "credentials not found".
type helperError struct {
	helper string
	host   string
	err    error
}

func (e *helperError) Error() string {
	// The helper's output is included by the client library (capped here: helpers print error
	// messages, never the secret, on failure, but a broken one may print anything: an answer
	// that holds a credential, and then fail, is not quoted).
	msg := e.err.Error()
	if looksLikeCredentials(msg) {
		return fmt.Sprintf("getting credentials for %s from docker-credential-%s: the helper failed after printing what looks like a credential (not shown)", e.host, e.helper)
	}
	if len(msg) > maxHelperMessage {
		n := maxHelperMessage
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n] + "…"
	}
	return fmt.Sprintf("getting credentials for %s from docker-credential-%s: %s", e.host, e.helper, msg)
}

// Unwrap returns the underlying cause.
func (e *helperError) Unwrap() error { return e.err }

// looksLikeCredentials reports whether a helper's output holds a credentials answer's secret
// field (the protocol's "Secret", or a "Password", "IdentityToken" or "Token" of a helper that
// prints another shape), which must not reach an error message.
func looksLikeCredentials(out string) bool {
	out = strings.ToLower(out)
	for _, key := range []string{`"secret"`, `"password"`, `"identitytoken"`, `"token"`} {
		if strings.Contains(out, key) {
			return true
		}
	}
	return false
}

// helperServerURL is what we ask a helper for: the host, or Docker Hub's historic URL.
func helperServerURL(host string) string {
	if normalizeHost(host) == "docker.io" {
		return dockerHubHelperURL
	}
	return host
}

// helperGet asks docker-credential-<name> for host. Not found is not an error. The helper is
// stopped when ctx ends or after helperTimeout, and at most maxHelperOutput of its answer is
// read.
func helperGet(parent context.Context, name, host string) (types.DockerAuthConfig, bool, error) {
	ctx, cancel := context.WithTimeout(parent, helperTimeout)
	defer cancel()
	out := &cappedBuffer{max: maxHelperOutput}
	program := func(args ...string) client.Program {
		cmd := exec.CommandContext(ctx, "docker-credential-"+name, args...)
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		killGroupOnCancel(cmd)
		cmd.WaitDelay = time.Second // a child of the helper may still hold its output open
		return &helperCmd{cmd: cmd, out: out}
	}
	c, err := client.Get(program, helperServerURL(host))
	if err != nil {
		switch {
		case parent.Err() != nil:
			err = parent.Err()
		case ctx.Err() != nil:
			err = errors.Errorf("no answer within %s", helperTimeout)
		case out.overflow:
			err = errors.Wrapf(types.ErrTooLarge, "an answer of more than %d bytes", maxHelperOutput)
		case helpercreds.IsErrCredentialsNotFound(err):
			return types.DockerAuthConfig{}, false, nil
		}
		return types.DockerAuthConfig{}, false, &helperError{helper: name, host: host, err: err}
	}
	if c.Username == identityTokenUser {
		return types.DockerAuthConfig{IdentityToken: c.Secret}, c.Secret != "", nil
	}
	auth := types.DockerAuthConfig{Username: c.Username, Password: c.Secret}
	return auth, auth != (types.DockerAuthConfig{}), nil
}

// helperCmd is a client.Program whose output is capped.
type helperCmd struct {
	cmd *exec.Cmd
	out *cappedBuffer
}

func (h *helperCmd) Input(in io.Reader) { h.cmd.Stdin = in }

func (h *helperCmd) Output() ([]byte, error) {
	err := h.cmd.Run()
	return h.out.Bytes(), err
}

// cappedBuffer keeps at most max bytes; a write beyond fails, which ends the helper's output.
// (It does not embed bytes.Buffer: io.Copy would use the Buffer's ReadFrom, bypassing Write.)
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.overflow = true
		return 0, types.ErrTooLarge
	}
	return b.buf.Write(p)
}

// Bytes returns what was kept.
func (b *cappedBuffer) Bytes() []byte { return b.buf.Bytes() }
