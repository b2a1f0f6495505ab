// Package ctxio makes a blocking read loop notice context cancellation.
package ctxio

import (
	"context"
	"io"
)

// Reader returns a reader that fails with ctx.Err() once ctx is done, checked
// before every Read of r. A Read already blocked in r is not interrupted.
func Reader(ctx context.Context, r io.Reader) io.Reader {
	return &reader{ctx: ctx, r: r}
}

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c *reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
