// Command floor is the speed floor of bench/run.sh: the least work any copy tool must do to move
// an image, done with bare HTTP and no library, so the other tools can be compared with it.
//
//	floor pull [-j N] [-out DIR] HOST/REPO:TAG        GET + sha256 of every manifest and blob
//	                                                  (with -out: also written to DIR/blobs/sha256/,
//	                                                  temp file + rename; -sync adds an fsync)
//	floor push [-j N] [-send MODE] LAYOUT HOST/REPO:TAG
//	                                                  POST + PUT of every blob of the layout's
//	                                                  entry, then PUT of the manifests; the body
//	                                                  is read and hashed as it goes (-send read,
//	                                                  the default), or sent with sendfile while a
//	                                                  second reader hashes the file (sendfile),
//	                                                  or sent with sendfile and not hashed
//	                                                  (nohash: what crane does)
//	floor copy [-j N] SRC-HOST/REPO:TAG DST-HOST/REPO:TAG
//	                                                  each blob streamed from a GET into a PUT
//	floor warm SRC-HOST/REPO:TAG DST-HOST/REPO:TAG    GET the source manifest, HEAD the
//	                                                  destination's, compare digests
//	floor wait HOST [SECONDS]                         wait until http://HOST/v2/ answers 200
//	floor proxy [-cut N] [-count FILE] [-delay D] LISTEN UPSTREAM
//	                                                  reverse proxy to the registry UPSTREAM
//	                                                  counting response bytes (into FILE); with
//	                                                  -cut, the link breaks for good after N;
//	                                                  with -delay, every request waits D before
//	                                                  it is forwarded (a link of that round trip)
//	floor freeport                                    print a free 127.0.0.1 port
//
// Registries are plain HTTP. -j (default 6, like imgcopy's default) bounds concurrent blobs.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

var acceptTypes = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

var client = &http.Client{Transport: &http.Transport{
	Proxy:               nil,
	MaxIdleConnsPerHost: 64,
	DisableCompression:  true,
	DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
}}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	jobs := fs.Int("j", 6, "blobs in flight")
	out := fs.String("out", "", "pull: directory to write the blobs into")
	syncFiles := fs.Bool("sync", false, "pull -out: fsync every file before renaming it")
	cut := fs.Int64("cut", 0, "proxy: cut the link for good after this many response bytes")
	countFile := fs.String("count", "", "proxy: write the response bytes passed so far to this file")
	send := fs.String("send", "read", "push: read, sendfile or nohash (see the package documentation)")
	delay := fs.Duration("delay", 0, "proxy: hold every request this long before forwarding it")
	_ = fs.Parse(args)
	args = fs.Args()
	var err error
	switch {
	case cmd == "pull" && len(args) == 1:
		fsync = *syncFiles
		err = pull(*jobs, *out, parseRef(args[0]))
	case cmd == "push" && len(args) == 2:
		err = push(*jobs, *send, args[0], parseRef(args[1]))
	case cmd == "copy" && len(args) == 2:
		err = copyImage(*jobs, parseRef(args[0]), parseRef(args[1]))
	case cmd == "warm" && len(args) == 2:
		err = warm(parseRef(args[0]), parseRef(args[1]))
	case cmd == "wait" && (len(args) == 1 || len(args) == 2):
		secs := 15
		if len(args) == 2 {
			secs, _ = strconv.Atoi(args[1])
		}
		err = wait(args[0], time.Duration(secs)*time.Second)
	case cmd == "proxy" && len(args) == 2:
		err = proxy(*cut, *countFile, *delay, args[0], args[1])
	case cmd == "freeport" && len(args) == 0:
		err = freeport()
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "floor %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: floor pull|push|copy|warm|proxy|wait|freeport ... (see the package comment)")
	os.Exit(2)
}

type ref struct{ host, repo, tag string }

func parseRef(s string) ref {
	host, rest, ok := strings.Cut(s, "/")
	repo, tag, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		fmt.Fprintf(os.Stderr, "floor: reference %q is not HOST/REPO:TAG\n", s)
		os.Exit(2)
	}
	return ref{host, repo, tag}
}

func (r ref) url(kind, name string) string {
	return "http://" + r.host + "/v2/" + r.repo + "/" + kind + "/" + name
}

type blob struct {
	digest string
	size   int64
}

// manifestBlob is one manifest to write, children before their index.
type manifestBlob struct {
	digest, mediaType string
	body              []byte
}

// image is the whole graph below a tag.
type image struct {
	manifests []manifestBlob // top one last
	blobs     []blob
}

type node struct {
	MediaType string `json:"mediaType"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
	Config *struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"config"`
	Layers []struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"layers"`
}

// walk builds the image graph from fetch, which returns a manifest's bytes and media type.
func walk(top string, fetch func(string) ([]byte, string, error)) (*image, error) {
	img := &image{}
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		body, mediaType, err := fetch(name)
		if err != nil {
			return err
		}
		var n node
		if err := json.Unmarshal(body, &n); err != nil {
			return fmt.Errorf("manifest %s: %v", name, err)
		}
		if mediaType == "" {
			mediaType = n.MediaType
		}
		for _, m := range n.Manifests {
			if err := visit(m.Digest); err != nil {
				return err
			}
		}
		add := func(d string, size int64) {
			if !seen[d] {
				seen[d] = true
				img.blobs = append(img.blobs, blob{d, size})
			}
		}
		if n.Config != nil {
			add(n.Config.Digest, n.Config.Size)
		}
		for _, l := range n.Layers {
			add(l.Digest, l.Size)
		}
		img.manifests = append(img.manifests, manifestBlob{digestOf(body), mediaType, body})
		return nil
	}
	return img, visit(top)
}

func remoteFetch(r ref) func(string) ([]byte, string, error) {
	return func(name string) ([]byte, string, error) {
		req, _ := http.NewRequest(http.MethodGet, r.url("manifests", name), nil)
		req.Header.Set("Accept", acceptTypes)
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, "", fmt.Errorf("GET manifest %s: %s", name, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return b, resp.Header.Get("Content-Type"), err
	}
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// parallel runs f for every blob with at most jobs at a time and returns the first error.
func parallel(jobs int, blobs []blob, f func(blob) error) error {
	sem := make(chan struct{}, max(jobs, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, b := range blobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(b); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("blob %s: %w", b.digest, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func getBlob(r ref, b blob) (io.ReadCloser, error) {
	resp, err := client.Get(r.url("blobs", b.digest))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET: %s", resp.Status)
	}
	return resp.Body, nil
}

func verify(b blob, sum []byte, n int64) error {
	if got := "sha256:" + hex.EncodeToString(sum); got != b.digest || n != b.size {
		return fmt.Errorf("got %s (%d bytes), want %s (%d bytes)", got, n, b.digest, b.size)
	}
	return nil
}

func pull(jobs int, out string, src ref) error {
	img, err := walk(src.tag, remoteFetch(src))
	if err != nil {
		return err
	}
	if out != "" {
		if err := os.MkdirAll(filepath.Join(out, "blobs", "sha256"), 0o755); err != nil {
			return err
		}
		for _, m := range img.manifests {
			if err := writeFile(out, m.digest, bytes.NewReader(m.body)); err != nil {
				return err
			}
		}
	}
	return parallel(jobs, img.blobs, func(b blob) error {
		body, err := getBlob(src, b)
		if err != nil {
			return err
		}
		defer body.Close()
		h := sha256.New()
		var n int64
		if out == "" {
			n, err = io.Copy(h, body)
		} else {
			cw := &counter{r: io.TeeReader(body, h)}
			err = writeFile(out, b.digest, cw)
			n = cw.n
		}
		if err != nil {
			return err
		}
		return verify(b, h.Sum(nil), n)
	})
}

// fsync makes writeFile sync each file before renaming it (pull -sync).
var fsync bool

// writeFile writes a blob the way a layout writer does: temp file, optional fsync, rename.
func writeFile(dir, digest string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Join(dir, "blobs"), "tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if fsync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// upload does the monolithic POST + PUT ?digest= of one blob of known size.
func upload(dst ref, b blob, body io.Reader) error {
	resp, err := client.Post("http://"+dst.host+"/v2/"+dst.repo+"/blobs/uploads/", "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST upload: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	loc = resp.Request.URL.ResolveReference(loc)
	q := loc.Query()
	q.Set("digest", b.digest)
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), body)
	req.ContentLength = b.size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT upload: %s", resp.Status)
	}
	return nil
}

func putManifests(dst ref, img *image) error {
	for i, m := range img.manifests {
		name := m.digest
		if i == len(img.manifests)-1 {
			name = dst.tag
		}
		req, _ := http.NewRequest(http.MethodPut, dst.url("manifests", name), bytes.NewReader(m.body))
		req.Header.Set("Content-Type", m.mediaType)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("PUT manifest %s: %s", name, resp.Status)
		}
	}
	return nil
}

func copyImage(jobs int, src, dst ref) error {
	img, err := walk(src.tag, remoteFetch(src))
	if err != nil {
		return err
	}
	err = parallel(jobs, img.blobs, func(b blob) error {
		body, err := getBlob(src, b)
		if err != nil {
			return err
		}
		defer body.Close()
		h := sha256.New()
		cr := &counter{r: io.TeeReader(body, h)}
		if err := upload(dst, b, cr); err != nil {
			return err
		}
		return verify(b, h.Sum(nil), cr.n)
	})
	if err != nil {
		return err
	}
	return putManifests(dst, img)
}

func push(jobs int, send, layout string, dst ref) error {
	if send != "read" && send != "sendfile" && send != "nohash" {
		return fmt.Errorf("-send %q: want read, sendfile or nohash", send)
	}
	var index struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return err
	}
	if len(index.Manifests) != 1 {
		return fmt.Errorf("%s: want exactly one index.json entry, have %d", layout, len(index.Manifests))
	}
	path := func(d string) string {
		return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	}
	img, err := walk(index.Manifests[0].Digest, func(d string) ([]byte, string, error) {
		b, err := os.ReadFile(path(d))
		return b, "", err
	})
	if err != nil {
		return err
	}
	err = parallel(jobs, img.blobs, func(b blob) error {
		f, err := os.Open(path(b.digest))
		if err != nil {
			return err
		}
		defer f.Close()
		// net/http closes a body that is an io.Closer once sent; the file must stay open for
		// the second reader. (io.NopCloser would hide it from sendfile.)
		body := openFile{f}
		switch send {
		case "nohash": // the *os.File body goes out with sendfile
			return upload(dst, b, body)
		case "sendfile": // sendfile, and the file hashed by a second reader at the same time
			hashed := make(chan error, 1)
			go func() {
				h := sha256.New()
				n, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, b.size+1), make([]byte, 256<<10))
				if err == nil {
					err = verify(b, h.Sum(nil), n)
				}
				hashed <- err
			}()
			if err := upload(dst, b, body); err != nil {
				<-hashed
				return err
			}
			return <-hashed
		}
		h := sha256.New()
		cr := &counter{r: io.TeeReader(f, h)}
		if err := upload(dst, b, cr); err != nil {
			return err
		}
		return verify(b, h.Sum(nil), cr.n)
	})
	if err != nil {
		return err
	}
	return putManifests(dst, img)
}

// openFile is a request body that net/http cannot close, still an *os.File for sendfile.
type openFile struct{ *os.File }

func (openFile) Close() error { return nil }

func warm(src, dst ref) error {
	body, _, err := remoteFetch(src)(src.tag)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodHead, dst.url("manifests", dst.tag), nil)
	req.Header.Set("Accept", acceptTypes)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("Docker-Content-Digest"), digestOf(body); got != want {
		return fmt.Errorf("destination has %q, source %s: not warm", got, want)
	}
	return nil
}

func wait(host string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer /v2/ within %s: %v", host, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeport() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}
