package interop

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Bundles written by the peers, read back by imgcopy: verify must accept them as written and
// refuse them when a byte changed, and sync must find the names the peers gave their images.

// TestVerifyRefusesTamperedPeerArchives writes one image as crane (tarball, gzip layers,
// config "sha256:<hex>"), skopeo (docker-archive, config "<hex>.json") and regctl (image
// export: an OCI layout plus manifest.json, config "blobs/sha256/<hex>") do; imgcopy verify
// accepts each, and exits 6 naming a digest mismatch once the config (still valid JSON),
// crane's compressed layer or the manifest regctl stores has one byte changed (the tar keeps
// its size, as damage in transit would).
func TestVerifyRefusesTamperedPeerArchives(t *testing.T) {
	tmp := setup(t, "skopeo", "crane", "regctl", "docker-registry")
	f := getFixture(t)
	reg := startRegistry(t)
	ref := reg + "/tamper/v1:1"
	imgcopyCopy(t, "oci:"+f.dir+":v1", "docker://"+ref)
	configHex := strings.TrimPrefix(f.configs["v1"], "sha256:")

	craneTar, skopeoTar, regctlTar := filepath.Join(tmp, "crane.tar"), filepath.Join(tmp, "skopeo.tar"), filepath.Join(tmp, "regctl.tar")
	crane(t, "pull", ref, craneTar)
	skopeo(t, "copy", "docker://"+ref, "docker-archive:"+skopeoTar+":tamper/v1:1")
	regctl(t, "image", "export", ref, regctlTar)

	config := func(b []byte) { copy(b[bytes.Index(b, []byte(`"linux"`)):], `"Linux"`) }
	flip := func(b []byte) { b[len(b)/2] ^= 0xff }
	cases := []struct {
		name, archive string
		member        func(name string) bool
		change        func([]byte)
	}{
		{"crane config", craneTar, func(n string) bool { return n == "sha256:"+configHex }, config},
		{"crane gzip layer", craneTar, func(n string) bool { return strings.HasSuffix(n, ".tar.gz") }, flip},
		{"skopeo config", skopeoTar, func(n string) bool { return n == configHex+".json" }, config},
		{"regctl config", regctlTar, func(n string) bool { return n == "blobs/sha256/"+configHex }, config},
		{"regctl manifest", regctlTar, func(n string) bool { return n == "blobs/sha256/"+strings.TrimPrefix(f.digests["v1"], "sha256:") }, flip},
	}
	for _, tc := range cases {
		if code, out := imgcopyExit(t, "verify", "docker-archive:"+tc.archive); code != 0 || !strings.Contains(out, "0 problem(s)") {
			t.Errorf("%s: imgcopy verify of the archive as written: exit %d\n%s", tc.name, code, out)
		}
		bad := filepath.Join(tmp, strings.ReplaceAll(tc.name, " ", "-")+".tar")
		tamperMember(t, tc.archive, bad, tc.member, tc.change)
		code, out := imgcopyExit(t, "verify", "docker-archive:"+bad)
		if code != 6 || !strings.Contains(out, "digest mismatch") {
			t.Errorf("%s changed: imgcopy verify exit %d, want 6 with a digest mismatch\n%s", tc.name, code, out)
		}
	}
}

// TestSyncNamesPeerExportsAndUnnamedLayouts syncs bundles whose images have no full name in
// org.opencontainers.image.ref.name: `regctl image export` (a bare tag there, the full name in
// io.containerd.image.name, as docker save and containerd write) arrives under its
// repository; `crane pull --format oci` of two images (no names at all) arrives by digest
// in the repository a template gives. Digests are checked with crane.
func TestSyncNamesPeerExportsAndUnnamedLayouts(t *testing.T) {
	tmp := setup(t, "crane", "regctl", "docker-registry")
	f := getFixture(t)
	src, dst := startRegistry(t), startRegistry(t)
	for _, name := range []string{"v1", "v2"} {
		imgcopyCopy(t, "oci:"+f.dir+":"+name, "docker://"+src+"/team/"+name+":1")
	}

	export := filepath.Join(tmp, "export.tar")
	regctl(t, "image", "export", src+"/team/v1:1", export)
	imgcopy(t, "sync", "--dest-tls-verify=false", "oci-archive:"+export, "docker://"+dst+"/mirror")
	if got := crane(t, "digest", dst+"/mirror/v1:1"); got != f.digests["v1"] {
		t.Errorf("synced regctl's export to %s/mirror/v1:1 as %s, want %s", dst, got, f.digests["v1"])
	}

	layout := filepath.Join(tmp, "crane-layout")
	crane(t, "pull", "--format", "oci", src+"/team/v1:1", src+"/team/v2:1", layout)
	imgcopy(t, "sync", "--dest-tls-verify=false", "--dest-repo", "unnamed/app", "oci:"+layout, "docker://"+dst+"/mirror")
	for _, name := range []string{"v1", "v2"} {
		if got := crane(t, "digest", dst+"/mirror/unnamed/app@"+f.digests[name]); got != f.digests[name] {
			t.Errorf("crane's unnamed %s: %s at the destination, want %s", name, got, f.digests[name])
		}
	}
}

// imgcopyExit runs the built binary and returns its exit code and its output (stdout, then
// stderr); only a failure to run it at all fails the test.
func imgcopyExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("$ imgcopy %s", strings.Join(args, " "))
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	}
	t.Fatalf("imgcopy %s: %v", strings.Join(args, " "), err)
	return -1, ""
}

// tamperMember copies the tar in to out with the first regular member that match selects
// changed in place by change, keeping every size.
func tamperMember(t *testing.T, in, out string, match func(name string) bool, change func([]byte)) {
	t.Helper()
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(b)), tar.NewWriter(&buf)
	var names []string
	done := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", in, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !done && h.Typeflag == tar.TypeReg && match(h.Name) && len(data) > 0 {
			change(data)
			done = true
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if !done {
		slices.Sort(names)
		t.Fatalf("%s has no member to change among %v", in, names)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
