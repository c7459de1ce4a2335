package docker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/imgcopy/imgcopy/types"
)

// defaultReadTimeout is how long a transfer may go without a byte before it counts as stalled.
const defaultReadTimeout = 30 * time.Second

// readTimeout returns the stall timeout sys asks for; 0 means none.
func readTimeout(sys *types.SystemContext) time.Duration {
	switch {
	case sys == nil || sys.ReadTimeout == 0:
		return defaultReadTimeout
	case sys.ReadTimeout < 0:
		return 0
	}
	return sys.ReadTimeout
}

// stallError is a request or response that moved no byte for the read timeout. It is a
// net.Error with Timeout() true, so it is retried (a response body is resumed with a Range
// request) like a broken connection, and it belongs to the network class.
type stallError struct {
	host    string
	timeout time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("timeout: %s sent nothing for %v (--read-timeout)", e.host, e.timeout)
}

// Timeout implements net.Error.
func (e *stallError) Timeout() bool { return true }

// Temporary implements net.Error.
func (e *stallError) Temporary() bool { return true }

// Is makes errors.Is(err, types.ErrNetwork) true.
func (e *stallError) Is(target error) bool { return target == types.ErrNetwork }

// watchdog cancels one HTTP exchange when it waits longer than timeout for the network: while
// the request is sent and its response awaited, and while a Read of the response body waits
// for bytes. Time spent elsewhere (reading the request body from our source, writing the
// response to our destination) does not count, so a slow consumer is not taken for a stalled
// registry.
type watchdog struct {
	timeout time.Duration
	host    string
	cancel  context.CancelFunc

	mu    sync.Mutex
	timer *time.Timer
	fired bool
	done  bool
}

// watch returns req bound to a watchdog (nil when timeout is 0), which is running.
func watch(req *http.Request, timeout time.Duration) (*http.Request, *watchdog) {
	if timeout <= 0 {
		return req, nil
	}
	ctx, cancel := context.WithCancel(req.Context())
	w := &watchdog{timeout: timeout, host: req.URL.Host, cancel: cancel}
	w.timer = time.AfterFunc(timeout, w.fire)
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &watchedRequestBody{ReadCloser: req.Body, w: w}
	}
	return req, w
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.fired = true
		w.cancel()
	}
}

// start (re)starts the countdown.
func (w *watchdog) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && !w.fired {
		w.timer.Reset(w.timeout)
	}
}

// pause stops the countdown.
func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
}

// stop ends the watch and releases the exchange's context.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.timer.Stop()
	w.cancel()
}

// check returns the stall error when the watchdog fired, else err.
func (w *watchdog) check(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired && err != nil {
		return &stallError{host: w.host, timeout: w.timeout}
	}
	return err
}

// watchedRequestBody pauses the countdown while the transport waits for our own source.
type watchedRequestBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *watchedRequestBody) Read(p []byte) (int, error) {
	b.w.pause()
	n, err := b.ReadCloser.Read(p)
	b.w.start()
	return n, err
}

// fileBody implements fileBodySender: while the connection sends the file itself, every piece
// it sends restarts the countdown.
func (b *watchedRequestBody) fileBody() (*fileBody, func()) {
	fb, _ := fileBodyOf(b.ReadCloser)
	if fb == nil {
		return nil, nil
	}
	return fb, b.w.start
}

// watchedBody runs the countdown while a Read waits for the registry.
type watchedBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.start()
	n, err := b.ReadCloser.Read(p)
	b.w.pause()
	if err != nil && err != io.EOF {
		err = b.w.check(err)
	}
	return n, err
}

// Close implements io.Closer.
func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.stop()
	return err
}
