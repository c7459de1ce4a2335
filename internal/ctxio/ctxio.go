// Package ctxio makes blob streams, and waits, stop when their context ends.
package ctxio

import (
	"context"
	"io"
	"time"
)

// Reader returns a reader that fails with ctx.Err() once ctx is done, checked before each
// Read of r. A Read already blocked in r is not interrupted.
func Reader(ctx context.Context, r io.Reader) io.Reader {
	return reader{ctx: ctx, r: r}
}

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Sleep waits for d, or until ctx is done and then returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
