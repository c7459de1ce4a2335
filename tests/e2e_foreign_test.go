package tests

import (
	"archive/tar"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/pkg/errors"

	copier "github.com/imgcopy/imgcopy/copy"
	"github.com/imgcopy/imgcopy/docker/tarfile"
	"github.com/imgcopy/imgcopy/internal/testregistry"
	"github.com/imgcopy/imgcopy/internal/urlfetch"
	"github.com/imgcopy/imgcopy/manifest"
	"github.com/imgcopy/imgcopy/tests/internal/fixtures"
	"github.com/imgcopy/imgcopy/types"
)

// foreignServer serves a foreign layer over HTTPS on 127.0.0.1, like the URLs of a Windows
// base layer; corrupt flips one byte of what it serves.
type foreignServer struct {
	srv      *httptest.Server
	data     atomic.Value // []byte
	corrupt  atomic.Bool
	requests atomic.Int32
	certDir  string // certs.d directory trusting the server
}

func startForeignServer(t *testing.T, tlsOn bool) *foreignServer {
	t.Helper()
	f := &foreignServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		b, _ := f.data.Load().([]byte)
		if f.corrupt.Load() {
			b = append([]byte(nil), b...)
			b[len(b)/2] ^= 0x01
		}
		_, _ = w.Write(b)
	})
	if tlsOn {
		f.srv = httptest.NewTLSServer(h)
		f.certDir = t.TempDir()
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
		if err := os.WriteFile(filepath.Join(f.certDir, "ca.crt"), ca, 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		f.srv = httptest.NewServer(h)
	}
	t.Cleanup(f.srv.Close)
	return f
}

// e2eForeignSource writes a Windows-like image whose base layer is foreign, served by f, as
// an OCI layout (without the foreign blob).
func e2eForeignSource(t *testing.T, f *foreignServer) (*fixtures.Layout, fixtures.Blob, types.ImageReference) {
	t.Helper()
	l, foreign, err := fixtures.BuildForeign(f.srv.URL + "/layers/base.tar.gz?token=secret")
	if err != nil {
		t.Fatal(err)
	}
	f.data.Store(foreign.Data)
	p := filepath.Join(t.TempDir(), "foreign-src")
	if err := l.Write(p); err != nil {
		t.Fatal(err)
	}
	return l, foreign, e2eRef(t, "oci:"+p+":latest")
}

// foreignOptions are copy options as the CLI builds them, recording skipped events.
func foreignOptions(f *foreignServer, include bool, skipped *[]copier.ProgressEvent) *copier.Options {
	src := &types.SystemContext{CertDir: f.certDir}
	var mu sync.Mutex
	return &copier.Options{
		SourceCtx: src, IncludeNonDistributable: include, ForeignLayerFetcher: urlfetch.New(src).Fetch,
		Progress: func(ev copier.ProgressEvent) {
			if ev.Kind == copier.EventBlobSkipped {
				mu.Lock()
				*skipped = append(*skipped, ev)
				mu.Unlock()
			}
		},
	}
}

// TestE2EForeignLayerKeptByDefault: without --include-non-distributable a foreign layer is
// kept as a reference (descriptor and URLs in the manifest, nothing fetched, a skipped event)
// in registries, OCI layouts and archives, and dir:; a docker-archive, which must contain
// every layer, gets its content and lists it in LayerSources, as docker save does.
func TestE2EForeignLayerKeptByDefault(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	for _, kind := range e2eKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := startForeignServer(t, true)
			l, foreign, src := e2eForeignSource(t, f)
			var skipped []copier.ProgressEvent
			dest := e2eLocation(t, kind, t.TempDir(), reg.Host, "foreign-"+kind)
			res := e2eCopy(t, dest, src, foreignOptions(f, false, &skipped))
			if res.ManifestDigest != l.ManifestDigest {
				t.Errorf("wrote %s, want the source's %s (the foreign layer unchanged)", res.ManifestDigest, l.ManifestDigest)
			}
			m, err := manifest.FromBlob(res.Manifest, res.MIMEType)
			if err != nil {
				t.Fatal(err)
			}
			if base := m.LayerInfos()[0]; base.MediaType != fixtures.DockerForeignLayerType || len(base.URLs) != 1 {
				t.Errorf("written base layer %+v, want the foreign descriptor with its URL", base.BlobInfo)
			}
			if kind == "docker-archive" {
				if f.requests.Load() != 1 || len(skipped) != 0 {
					t.Errorf("docker-archive: %d downloads, %d skipped events; want the layer fetched once", f.requests.Load(), len(skipped))
				}
				e2eCheckLayerSources(t, dest, foreign, l.Images[0].DiffIDs[0])
				return
			}
			if f.requests.Load() != 0 || len(skipped) != 1 || skipped[0].Digest != foreign.Digest || skipped[0].Reason != copier.ReasonForeignLayer {
				t.Errorf("%d downloads, skipped events %+v; want none and one for %s", f.requests.Load(), skipped, foreign.Digest)
			}
			e2eCheckBlobMissing(t, dest, foreign.Digest)
		})
	}
}

// e2eCheckBlobMissing checks that the foreign layer was not stored at the destination.
func e2eCheckBlobMissing(t *testing.T, ref types.ImageReference, d digest.Digest) {
	t.Helper()
	src, err := ref.NewImageSource(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rc, _, err := src.GetBlob(context.Background(), types.BlobInfo{Digest: d, Size: -1}, types.GetBlobOptions{})
	if err == nil {
		rc.Close()
		t.Errorf("%s holds the foreign layer %s", types.ImageName(ref), d)
	} else if !errors.Is(err, types.ErrBlobNotFound) {
		t.Errorf("fetching the foreign layer from %s: %v, want ErrBlobNotFound", types.ImageName(ref), err)
	}
}

// e2eCheckLayerSources checks a docker-archive's manifest.json: the foreign layer is listed in
// LayerSources under its diff ID, with its URL, and its content is in the archive.
func e2eCheckLayerSources(t *testing.T, ref types.ImageReference, foreign fixtures.Blob, diffID digest.Digest) {
	t.Helper()
	path, _, _ := strings.Cut(ref.StringWithinTransport(), ":")
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	tr := tar.NewReader(fh)
	var items []tarfile.ManifestItem
	hasBlob := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch hdr.Name {
		case "manifest.json":
			if err := json.NewDecoder(tr).Decode(&items); err != nil {
				t.Fatal(err)
			}
		case "blobs/sha256/" + foreign.Digest.Encoded():
			hasBlob = true
		}
	}
	var desc struct {
		MediaType string
		Digest    digest.Digest
		URLs      []string
	}
	if len(items) != 1 || json.Unmarshal(items[0].LayerSources[diffID.String()], &desc) != nil ||
		desc.Digest != foreign.Digest || desc.MediaType != fixtures.DockerForeignLayerType || len(desc.URLs) != 1 {
		t.Errorf("manifest.json %+v: want LayerSources[%s] describing %s with its URL", items, diffID, foreign.Digest)
	}
	if !hasBlob {
		t.Errorf("the archive lacks the foreign layer's content")
	}
}

// TestE2EForeignLayerIncluded: with --include-non-distributable the foreign layer is fetched
// from its URL (verified like every blob), stored, and written as an ordinary layer.
func TestE2EForeignLayerIncluded(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	for _, kind := range []string{"registry", "oci", "dir"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := startForeignServer(t, true)
			_, foreign, src := e2eForeignSource(t, f)
			var skipped []copier.ProgressEvent
			dest := e2eLocation(t, kind, t.TempDir(), reg.Host, "included-"+kind)
			res := e2eCopy(t, dest, src, foreignOptions(f, true, &skipped))
			m, err := manifest.FromBlob(res.Manifest, res.MIMEType)
			if err != nil {
				t.Fatal(err)
			}
			base := m.LayerInfos()[0]
			if base.Digest != foreign.Digest || base.MediaType != manifest.DockerV2Schema2LayerMediaType || len(base.URLs) != 0 || !res.DigestChanged {
				t.Errorf("written base layer %+v, want %s as an ordinary gzip layer without URLs", base.BlobInfo, foreign.Digest)
			}
			if f.requests.Load() != 1 || len(skipped) != 0 {
				t.Errorf("%d downloads, %d skipped events; want one download", f.requests.Load(), len(skipped))
			}
			e2eVerify(t, dest, nil) // every blob, the foreign one included, read back and checked
		})
	}
}

// TestE2EForeignLayerFetchFailures: a wrong byte from the URL is a digest mismatch naming the
// layer, and nothing is committed; a plain-HTTP URL is refused while TLS verification is on.
func TestE2EForeignLayerFetchFailures(t *testing.T) {
	t.Parallel()
	t.Run("corrupt", func(t *testing.T) {
		t.Parallel()
		f := startForeignServer(t, true)
		_, foreign, src := e2eForeignSource(t, f)
		f.corrupt.Store(true)
		var skipped []copier.ProgressEvent
		dest := e2eRef(t, "oci:"+filepath.Join(t.TempDir(), "out")+":v1")
		_, err := copier.Image(context.Background(), dest, src, foreignOptions(f, true, &skipped))
		if !errors.Is(err, types.ErrDigestMismatch) || !strings.Contains(err.Error(), foreign.Digest.String()) {
			t.Errorf("got %v, want a digest mismatch naming %s", err, foreign.Digest)
		}
		if _, err := dest.NewImageSource(context.Background(), nil); err == nil {
			t.Errorf("an image was committed after the failure")
		}
	})
	t.Run("plain http", func(t *testing.T) {
		t.Parallel()
		f := startForeignServer(t, false)
		_, _, src := e2eForeignSource(t, f)
		var skipped []copier.ProgressEvent
		dest := e2eRef(t, "oci:"+filepath.Join(t.TempDir(), "out")+":v1")
		_, err := copier.Image(context.Background(), dest, src, foreignOptions(f, true, &skipped))
		if !errors.Is(err, urlfetch.ErrInsecureURL) || f.requests.Load() != 0 || strings.Contains(err.Error(), "secret") {
			t.Errorf("got %v after %d requests, want ErrInsecureURL before any request (and no query in the message)", err, f.requests.Load())
		}
	})
}

// TestCLIForeignLayer runs the CLI: by default the plain progress says that the foreign
// layer is kept as a reference; with --include-non-distributable it is fetched (over HTTPS,
// trusting the server through --src-cert-dir) and stored.
func TestCLIForeignLayer(t *testing.T) {
	t.Parallel()
	f := startForeignServer(t, true)
	_, foreign, src := e2eForeignSource(t, f)
	srcName := types.ImageName(src)
	res := cli(t, "--progress", "plain", srcName, "oci:"+filepath.Join(t.TempDir(), "kept")+":v1")
	if res.code != 0 || !strings.Contains(res.stdout, "Copying blob "+foreign.Digest.String()+" skipped: foreign layer kept as a reference") || f.requests.Load() != 0 {
		t.Errorf("default copy: exit %d, %d downloads, stdout:\n%s\nstderr:\n%s", res.code, f.requests.Load(), res.stdout, res.stderr)
	}
	res = cli(t, "--progress", "plain", "--include-non-distributable", "--src-cert-dir", f.certDir, srcName, "dir:"+filepath.Join(t.TempDir(), "included"))
	if res.code != 0 || strings.Contains(res.stdout, "kept as a reference") || f.requests.Load() != 1 {
		t.Errorf("--include-non-distributable: exit %d, %d downloads, stdout:\n%s\nstderr:\n%s", res.code, f.requests.Load(), res.stdout, res.stderr)
	}
}
