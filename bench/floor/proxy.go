package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// proxy serves a reverse proxy to the plain-HTTP registry upstream on listen and counts the
// bytes of every response body it passes, writing the total to countFile after each response.
// With cut > 0, once cut bytes went by it cuts the response in flight and, from then on, every
// request (the connection is dropped with no answer): a link that broke for good. With delay >
// 0 every request waits that long before it is forwarded: each request-and-answer exchange
// takes one round trip of a link that far away (its bandwidth is not limited).
func proxy(cut int64, countFile string, delay time.Duration, listen, upstream string) error {
	p := &cuttingProxy{cut: cut, countFile: countFile, delay: delay}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	rp.Transport = client.Transport
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &countedBody{body: resp.Body, p: p}
		return nil
	}
	p.next = rp
	return http.ListenAndServe(listen, p)
}

type cuttingProxy struct {
	next      http.Handler
	cut       int64
	countFile string
	delay     time.Duration

	mu    sync.Mutex
	count int64
	cutAt bool // the cut happened
}

func (p *cuttingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	dead := p.cutAt
	p.mu.Unlock()
	if dead {
		panic(http.ErrAbortHandler) // drop the connection without an answer
	}
	defer p.save()
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-r.Context().Done():
			return
		}
	}
	p.next.ServeHTTP(w, r)
}

func (p *cuttingProxy) save() {
	p.mu.Lock()
	n := p.count
	p.mu.Unlock()
	if p.countFile != "" {
		_ = os.WriteFile(p.countFile, []byte(strconv.FormatInt(n, 10)+"\n"), 0o644)
	}
}

// countedBody counts a response body and ends it with an error at the cut.
type countedBody struct {
	body io.ReadCloser
	p    *cuttingProxy
}

func (b *countedBody) Read(buf []byte) (int, error) {
	b.p.mu.Lock()
	if b.p.cut > 0 {
		left := b.p.cut - b.p.count
		if left <= 0 {
			b.p.cutAt = true
			b.p.mu.Unlock()
			return 0, errCut
		}
		if int64(len(buf)) > left {
			buf = buf[:left]
		}
	}
	b.p.mu.Unlock()
	n, err := b.body.Read(buf)
	b.p.mu.Lock()
	b.p.count += int64(n)
	b.p.mu.Unlock()
	return n, err
}

func (b *countedBody) Close() error { return b.body.Close() }

var errCut = errors.New("connection cut by the bench proxy")
