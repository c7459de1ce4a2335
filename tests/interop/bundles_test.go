package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// bundleImages are the fixture images every bundle holds, in the order they are added: the
// fixture ref, the name written into docker-archive bundles, the one for layouts and
// oci-archives (full references, as containerd and regctl want them), and the fixture
// config that manifest.json lists (multi: --platform linux/arm64).
var bundleImages = []struct{ ref, dockerName, ociName, config string }{
	{"v1", "interop/v1:1", "example.com/interop/v1:1", "v1"},
	{"v2", "interop/v2:1", "example.com/interop/v2:1", "v2"},
	{"multi", "interop/multi:1", "example.com/interop/multi:1", "multi-arm64"},
}

// buildBundles writes the fixture images into a docker-archive, an oci-archive and an OCI
// layout, one plain `imgcopy copy` per image (each adds its image to the bundle; the
// multi-platform index whole, which a docker-archive gets with --all --platform linux/arm64),
// and checks each with imgcopy verify.
func buildBundles(t *testing.T, f *fixture, dir string) (dockerArchive, ociArchive, layout string) {
	t.Helper()
	dockerArchive, ociArchive, layout = filepath.Join(dir, "bundle.tar"), filepath.Join(dir, "bundle-oci.tar"), filepath.Join(dir, "layout")
	for _, img := range bundleImages {
		src := "oci:" + f.dir + ":" + img.ref
		for _, dst := range []string{"docker-archive:" + dockerArchive + ":" + img.dockerName, "oci-archive:" + ociArchive + ":" + img.ociName, "oci:" + layout + ":" + img.ociName} {
			var flags []string
			if img.ref == "multi" && strings.HasPrefix(dst, "docker-archive:") {
				flags = []string{"--all", "--platform", "linux/arm64"} // the whole index; manifest.json lists arm64
			}
			if got := imgcopyCopy(t, src, dst, flags...); got != f.digests[img.ref] {
				t.Fatalf("%s: wrote %s, want the fixture's %s", dst, got, f.digests[img.ref])
			}
		}
	}
	for _, b := range []string{"docker-archive:" + dockerArchive, "oci-archive:" + ociArchive, "oci:" + layout} {
		if out := imgcopy(t, "verify", b); !strings.Contains(out, "Checked 3 image(s)") || !strings.Contains(out, "0 problem(s)") {
			t.Fatalf("imgcopy verify %s: %s", b, out)
		}
	}
	return dockerArchive, ociArchive, layout
}

// TestPeersReadImgcopyBundles: skopeo reads each image of the multi-image archives by name and
// by @N (for the docker-archive, the image manifest.json lists: arm64 for the index), regctl
// imports each image of both archives by name with its digest, crane pushes the layout bundle
// as an index of the three, and umoci unpacks an image of it.
func TestPeersReadImgcopyBundles(t *testing.T) {
	tmp := setup(t, "skopeo", "regctl", "crane", "umoci", "docker-registry")
	f := getFixture(t)
	dockerArchive, ociArchive, layout := buildBundles(t, f, tmp)
	reg := startRegistry(t)

	for i, img := range bundleImages {
		wantConfig := f.configs[img.config]
		for _, ref := range []string{"docker-archive:" + dockerArchive + ":" + img.dockerName, fmt.Sprintf("docker-archive:%s:@%d", dockerArchive, i)} {
			if got := sha256Digest([]byte(skopeo(t, "inspect", "--config", "--raw", ref))); got != wantConfig {
				t.Errorf("skopeo reads %s with config %s, want %s (%s)", ref, got, wantConfig, img.config)
			}
		}
		ociRef := "oci-archive:" + ociArchive + ":" + img.ociName
		if got := skopeoRawDigest(t, ociRef); got != f.digests[img.ref] {
			t.Errorf("skopeo reads %s as %s, want %s", ociRef, got, f.digests[img.ref])
		}
		for _, archive := range []struct{ path, name string }{{dockerArchive, "docker.io/" + img.dockerName}, {ociArchive, img.ociName}} {
			dest := fmt.Sprintf("%s/bundle/%s-%d:1", reg, strings.TrimSuffix(filepath.Base(archive.path), ".tar"), i)
			regctl(t, "image", "import", "--name", archive.name, dest, archive.path)
			if got := regctl(t, "image", "digest", dest); got != f.digests[img.ref] {
				t.Errorf("regctl imported %s from %s as %s, want %s", archive.name, archive.path, got, f.digests[img.ref])
			}
		}
	}

	crane(t, "push", "--index", layout, reg+"/bundle/layout:1")
	var idx imgspecv1.Index
	if err := json.Unmarshal([]byte(crane(t, "manifest", reg+"/bundle/layout:1")), &idx); err != nil {
		t.Fatal(err)
	}
	pushed := map[string]bool{}
	for _, d := range idx.Manifests {
		pushed[d.Digest.String()] = true
	}
	for _, img := range bundleImages {
		if !pushed[f.digests[img.ref]] {
			t.Errorf("crane push --index of the layout bundle lost %s (%s): %v", img.ref, f.digests[img.ref], idx.Manifests)
		}
	}
	unpackAndCheck(t, layout, "example.com/interop/v1:1", "v1")
}

// TestCtrImportsImgcopyBundles imports the docker-archive and the oci-archive bundle into a
// private containerd with `ctr images import` (the loader of k3s and of Docker's containerd
// image store): every image arrives under its name with its digest, the index whole.
func TestCtrImportsImgcopyBundles(t *testing.T) {
	tmp := setup(t, "ctr", "containerd")
	if os.Getuid() != 0 {
		t.Skip("a private containerd needs root")
	}
	f := getFixture(t)
	dockerArchive, ociArchive, _ := buildBundles(t, f, tmp)
	sock := startContainerd(t, filepath.Join(tmp, "containerd"))
	for _, archive := range []string{dockerArchive, ociArchive} {
		run(t, "ctr", "-a", sock, "images", "import", "--snapshotter", "native", archive)
	}
	listed := run(t, "ctr", "-a", sock, "images", "ls")
	for _, img := range bundleImages {
		for _, name := range []string{"docker.io/" + img.dockerName, img.ociName} {
			if !containsLine(listed, name, f.digests[img.ref]) {
				t.Errorf("ctr images ls has no %s with digest %s:\n%s", name, f.digests[img.ref], listed)
			}
		}
	}
}

// startContainerd runs a private containerd (its own root, state and socket under dir, the
// CRI plugin off) until the test ends, and returns its socket.
func startContainerd(t *testing.T, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := runErr(t, "ctr", "-a", sock, "version"); err == nil {
			return sock
		}
		select {
		case <-done:
			t.Fatalf("containerd exited:\n%s", log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s within 15s:\n%s", sock, log.String())
		}
	}
}

// containsLine reports whether some line of s holds all of words.
func containsLine(s string, words ...string) bool {
	for _, line := range strings.Split(s, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}
