package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	copier "github.com/imgcopy/imgcopy/copy"
)

// wantUsageError runs args in a subtest and checks that they fail as a usage error (exit code
// 2) whose message contains want, without copying anything. The tests that run the app are
// not parallel: urfave/cli's help and version flags are package variables it writes.
func wantUsageError(t *testing.T, args []string, want string) {
	t.Helper()
	t.Run(strings.Join(args, " "), func(t *testing.T) {
		h := newHarness(t)
		if code := h.run(args...); code != exitUsage {
			t.Errorf("exit code %d, want %d; stderr %s", code, exitUsage, h.stderr.String())
		}
		if !strings.Contains(h.stderr.String(), want) {
			t.Errorf("stderr %q does not contain %q", h.stderr.String(), want)
		}
		if h.opts != nil {
			t.Error("copy was called")
		}
	})
}

// TestSkopeoOnlyFlagsSayWhatToUse checks that skopeo flags imgcopy does not have, on every
// command skopeo has them, are refused with what to use instead.
func TestSkopeoOnlyFlagsSayWhatToUse(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"copy", "--dest-compress", "dir:/a", "dir:/b"}, "--dest-compress is a skopeo flag imgcopy does not have: use --dest-compress-format gzip"},
		{[]string{"copy", "--dest-oci-accept-uncompressed-layers", "dir:/a", "oci:/b"}, "keeps uncompressed layers"},
		{[]string{"copy", "--dest-precompute-digests", "dir:/a", "docker://h/b"}, "asks the registry which blobs it has"},
		{[]string{"copy", "--src-shared-blob-dir", "/s", "oci:/a", "dir:/b"}, "no shared blob directory"},
		{[]string{"copy", "--dest-daemon-host", "unix:///x", "dir:/a", "dir:/b"}, "no docker-daemon: transport"},
		{[]string{"copy", "--encrypt-layer", "1", "dir:/a", "dir:/b"}, "does not encrypt layers"},
		{[]string{"--policy", "/p.json", "copy", "dir:/a", "dir:/b"}, "--policy is a skopeo flag imgcopy does not have: imgcopy enforces no signature policy"},
		{[]string{"--registries.d", "/r", "dir:/a", "dir:/b"}, "reads no registries.d"},
		{[]string{"--command-timeout", "1m", "copy", "dir:/a", "dir:/b"}, "timeout(1)"},
		{[]string{"inspect", "--username", "alice", "docker://h/a"}, "--username is a skopeo flag imgcopy does not have: use --creds USERNAME[:PASSWORD]"},
		{[]string{"list-tags", "--password", "x", "docker://h/a"}, "use --creds USERNAME[:PASSWORD]"},
		{[]string{"delete", "--shared-blob-dir", "/s", "oci:/a"}, "no shared blob directory"},
		{[]string{"inspect", "--daemon-host", "x", "docker://h/a"}, "no docker-daemon: transport"},
		{[]string{"login", "-v", "h"}, "-v is not a flag of imgcopy login: imgcopy login prints"},
		{[]string{"logout", "--tls-verify=false", "h"}, "logout does not contact the registry"},
		{[]string{"--require-signed", "copy", "dir:/a", "dir:/b"}, "enforces no signature policy"},
		{[]string{"--tls-verify=false", "copy", "dir:/a", "dir:/b"}, "--tls-verify is not a flag of imgcopy copy: use --src-tls-verify and/or --dest-tls-verify"},
		{[]string{"dir:/a", "dir:/b", "--creds", "a:b"}, "use --src-creds and/or --dest-creds"},
		{[]string{"sync", "--cert-dir", "/c", "dir:/a", "dir:/b"}, "use --src-cert-dir and/or --dest-cert-dir"},
		{[]string{"--registries-conf", "/r.conf", "inspect", "docker://a"}, "reads no registries.conf"},
		{[]string{"login", "--compat-auth-file", "/c.json", "h"}, "--authfile ~/.docker/config.json"},
	}
	for _, tc := range cases {
		wantUsageError(t, tc.args, tc.want)
	}
}

// TestInsecurePolicyIsAccepted checks that skopeo's --insecure-policy, which nearly every
// skopeo script in a container carries, is accepted before or after the command, and so is
// --remove-signatures (imgcopy copies no signatures unless asked).
func TestInsecurePolicyIsAccepted(t *testing.T) {
	for _, args := range [][]string{
		{"--insecure-policy", "copy", "dir:/a", "dir:/b"},
		{"copy", "--insecure-policy", "dir:/a", "dir:/b"},
		{"--insecure-policy", "dir:/a", "dir:/b"},
		{"copy", "--remove-signatures", "dir:/a", "dir:/b"},
	} {
		h := newHarness(t)
		if code := h.run(args...); code != exitOK || h.opts == nil {
			t.Errorf("%v: exit %d, copy called %v: %s", args, code, h.opts != nil, h.stderr.String())
		}
	}
}

// TestCopyFlagsAfterAnotherCommandAreRefused checks that a copy flag written with another
// command (imgcopy inspect --all, imgcopy logout -a before it had --all, --src-creds before
// list-tags) is reported instead of being parsed as the default copy's and ignored.
func TestCopyFlagsAfterAnotherCommandAreRefused(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "--all", "dir:/a"}, "flag provided but not defined: -all"},
		{[]string{"inspect", "dir:/a", "--dest-tls-verify=false"}, "flag provided but not defined: -dest-tls-verify"},
		{[]string{"list-tags", "--src-creds", "a:b", "docker://h/r"}, "flag provided but not defined: -src-creds"},
		{[]string{"--src-creds", "a:b", "inspect", "docker://h/r:1"}, "flag provided but not defined: -src-creds"},
		{[]string{"manifest-digest", "--quiet", "/m.json"}, "flag provided but not defined: -quiet"},
	}
	for _, tc := range cases {
		wantUsageError(t, tc.args, tc.want)
	}
	// Global flags still work after the command name, as in skopeo.
	h := newHarness(t)
	if code := h.run("copy", "--debug", "--override-arch", "arm64", "dir:/a", "dir:/b"); code != exitOK || h.opts.SourceCtx.ArchitectureChoice != "arm64" {
		t.Errorf("global flags after copy: exit %d: %s", code, h.stderr.String())
	}
}

// TestLogoutAllAndGetLogin checks skopeo's logout --all (-a) and login --get-login.
func TestLogoutAllAndGetLogin(t *testing.T) {
	dir := t.TempDir()
	authfile := filepath.Join(dir, "auth.json")
	const stored = `{"auths":{"a.example":{"auth":"YWxpY2U6czNjcmV0"},"b.example:5000":{"auth":"Ym9iOng="}},"credHelpers":{"c.example":"pass"}}`
	if err := os.WriteFile(authfile, []byte(stored), 0o600); err != nil {
		t.Fatal(err)
	}

	h := newHarness(t)
	if code := h.run("login", "--get-login", "--authfile", authfile, "a.example"); code != exitOK || h.stdout.String() != "alice\n" {
		t.Fatalf("login --get-login: exit %d, stdout %q, stderr %s", code, h.stdout.String(), h.stderr.String())
	}
	h = newHarness(t)
	if code := h.run("login", "--get-login", "--authfile", authfile, "d.example"); code != exitFailure || h.stdout.Len() != 0 || !strings.Contains(h.stderr.String(), "not logged in") {
		t.Fatalf("login --get-login of an unknown registry: exit %d, stdout %q, stderr %s", code, h.stdout.String(), h.stderr.String())
	}

	for _, flag := range []string{"--all", "-a"} {
		if err := os.WriteFile(authfile, []byte(stored), 0o600); err != nil {
			t.Fatal(err)
		}
		h = newHarness(t)
		if code := h.run("logout", flag, "--authfile", authfile); code != exitOK {
			t.Fatalf("logout %s: exit %d: %s", flag, code, h.stderr.String())
		}
		var got map[string]map[string]any
		b, err := os.ReadFile(authfile)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if len(got["auths"]) != 0 || got["credHelpers"]["c.example"] != "pass" {
			t.Errorf("logout %s left %s", flag, b)
		}
	}
	h = newHarness(t)
	if code := h.run("logout", "--all", "--authfile", authfile, "a.example"); code != exitUsage {
		t.Errorf("logout --all REGISTRY: exit %d, want %d", code, exitUsage)
	}
	missing := filepath.Join(dir, "missing.json")
	h = newHarness(t)
	if code := h.run("logout", "--all", "--authfile", missing); code != exitOK {
		t.Errorf("logout --all without a file: exit %d: %s", code, h.stderr.String())
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("logout --all created %s: %v", missing, err)
	}
}

// TestOverridePlatformSelectsItsImage checks that --override-arch (and -os, -variant) without
// --all, --multi-arch or --platform copies that platform's image, as skopeo copy does, rather
// than being ignored by the default copy of every platform.
func TestOverridePlatformSelectsItsImage(t *testing.T) {
	cases := []struct {
		args []string
		want copier.MultiArch
	}{
		{[]string{"--override-arch", "arm64", "dir:/a", "dir:/b"}, copier.MultiArchSystem},
		{[]string{"copy", "dir:/a", "dir:/b", "--override-os", "linux"}, copier.MultiArchSystem},
		{[]string{"--override-variant", "v7", "copy", "dir:/a", "dir:/b"}, copier.MultiArchSystem},
		{[]string{"--override-arch", "arm64", "--all", "dir:/a", "dir:/b"}, copier.MultiArchAll},
		{[]string{"--override-arch", "arm64", "--multi-arch", "index-only", "dir:/a", "dir:/b"}, copier.MultiArchIndexOnly},
		{[]string{"--override-arch", "arm64", "--platform", "linux/amd64", "dir:/a", "dir:/b"}, copier.MultiArchDefault},
		{[]string{"dir:/a", "dir:/b"}, copier.MultiArchDefault},
	}
	for _, tc := range cases {
		h := newHarness(t)
		if code := h.run(tc.args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", tc.args, code, h.stderr.String())
		}
		if h.opts.MultiArch != tc.want {
			t.Errorf("%v: MultiArch %v, want %v", tc.args, h.opts.MultiArch, tc.want)
		}
	}
}

// TestHelpCommand checks skopeo's "help" and "help COMMAND", which imgcopy took as SRC.
func TestHelpCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "imgcopy - copy container images"},
		{[]string{"help", "inspect"}, "imgcopy inspect - show an image's digest"},
		{[]string{"help", "copy"}, "imgcopy copy - copy an image"},
	} {
		h := newHarness(t)
		if code := h.run(tc.args...); code != exitOK || !strings.Contains(h.stdout.String(), tc.want) {
			t.Errorf("%v: exit %d, stdout %.200q, stderr %s", tc.args, code, h.stdout.String(), h.stderr.String())
		}
	}
}

// TestSkopeoOnlyCommandsSayWhatToUse checks that skopeo's commands imgcopy lacks are named
// as such, where the default copy took them as SRC and complained about flags or arguments.
func TestSkopeoOnlyCommandsSayWhatToUse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"standalone-sign", "m.json", "docker.io/a:b", "FP", "-o", "sig"}, "standalone-sign is a skopeo command imgcopy does not have: imgcopy does not sign images"},
		{[]string{"--log-level", "info", "standalone-verify", "m", "docker.io/a:b", "FP", "sig"}, "standalone-verify is a skopeo command"},
		{[]string{"generate-sigstore-key", "--output-prefix", "x"}, "cosign generate-key-pair"},
	} {
		wantUsageError(t, tc.args, tc.want)
	}
}

// TestSkopeoTransportsSayWhatToUse checks that skopeo's transports imgcopy lacks get a hint.
func TestSkopeoTransportsSayWhatToUse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"docker-daemon:busybox:latest", "dir:/b"}, "docker save -o FILE.tar IMAGE and use docker-archive:FILE.tar"},
		{[]string{"inspect", "containers-storage:busybox"}, "podman save --format oci-archive"},
		{[]string{"copy", "dir:/a", "docker-daemon:app:1"}, "docker load -i FILE.tar"},
	} {
		wantUsageError(t, tc.args, tc.want)
	}
}
