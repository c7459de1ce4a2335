package docker

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/imgcopy/imgcopy/internal/iolimits"
	"github.com/imgcopy/imgcopy/types"
)

// metadataDeadlineFactor times the read timeout is how long reading a metadata response's
// body whole (a manifest, a tag list page, a referrers list, a token, an error) may take: 5
// minutes by default. The read timeout restarts with every byte, so a registry that sends a
// byte now and then (slow-loris) would otherwise keep a copy waiting for good; a metadata body
// is at most a few MiB (iolimits), which the slowest link still sends within that time.
const metadataDeadlineFactor = 10

// slowBodyError is a metadata response whose body did not arrive whole within its deadline.
// Like a stall, it is a timeout of the network class, retried like a broken connection.
type slowBodyError struct {
	host     string
	deadline time.Duration
}

func (e *slowBodyError) Error() string {
	return fmt.Sprintf("timeout: %s took more than %v to send a response of at most a few MiB (%d × --read-timeout)", e.host, e.deadline, metadataDeadlineFactor)
}

// Timeout implements net.Error.
func (e *slowBodyError) Timeout() bool { return true }

// Temporary implements net.Error.
func (e *slowBodyError) Temporary() bool { return true }

// Is makes errors.Is(err, types.ErrNetwork) true.
func (e *slowBodyError) Is(target error) bool { return target == types.ErrNetwork }

// readMetadata reads resp's body whole, at most limit bytes (iolimits.ReadAtMost), within
// metadataDeadlineFactor times the read timeout of the exchange; the caller closes the body.
func readMetadata(resp *http.Response, limit int) ([]byte, error) {
	wb, ok := resp.Body.(*watchedBody)
	if !ok || wb.w == nil {
		return iolimits.ReadAtMost(resp.Body, limit)
	}
	deadline := metadataDeadlineFactor * wb.w.timeout
	var late atomic.Bool
	t := time.AfterFunc(deadline, func() {
		late.Store(true)
		wb.w.cancel() // ends the exchange: the pending Read returns at once
	})
	b, err := iolimits.ReadAtMost(resp.Body, limit)
	t.Stop()
	if err != nil && late.Load() {
		return nil, &slowBodyError{host: wb.w.host, deadline: deadline}
	}
	return b, err
}
