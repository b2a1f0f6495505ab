package ingest

import (
	"context"
	"fmt"
	"time"
)

// maintain flushes expired buffers, enforces the memory limit and cuts the
// tables that are due for their committers.
func (r *Runner) maintain(ctx context.Context) {
	now := time.Now()
	r.registryRetry(now)
	var total int64
	for _, t := range r.tables {
		for _, s := range t.sinks() {
			if err := s.w.FlushExpired(ctx); err != nil {
				r.reset(ctx, t, fmt.Errorf("flush %s: %w", s.uri, err))
				break
			}
			s.files = append(s.files, s.w.TakeFinished()...)
		}
		b := t.buffered()
		total += b
		r.m.buffered.WithLabelValues(t.name).Set(float64(b))
		r.m.uploading.WithLabelValues(t.name).Set(float64(t.uploading.Load()))
	}
	// Files waiting for their upload count against the limit too.
	uploading := r.inflight.Load()
	total += uploading
	total = r.flushOverLimit(ctx, total)
	r.held.Store(total)
	for _, t := range r.tables {
		// A finished file is cut at once only when the committer is free:
		// while it commits, files gather and go in the next commit.
		files := len(t.main.files) > 0 || (t.dlq != nil && len(t.dlq.files) > 0)
		if now.After(t.nextCommit) || (files && t.idle() && !t.failing) {
			_ = r.cut(ctx, t)
		}
	}
	// Backpressure: a table that cannot commit stops fetching once the
	// buffer limit is reached, and resumes after a successful commit; every
	// table stops while the files waiting for upload hold more than half
	// of it (the store is slower than Kafka).
	limit := r.bufferLimit()
	over := total > limit
	clogged := uploading > limit/2
	for _, t := range r.tables {
		stop := (t.failing && over) || clogged
		switch {
		case stop && !t.paused:
			r.log.Warn("pausing fetches", "table", t.name, "buffered", t.buffered(), "uploading", uploading, "commit_failing", t.failing, "memory_limit", r.cfg.MemoryLimit)
			r.cl.PauseFetchTopics(t.cfg.Topics...)
			t.paused = true
			r.m.paused.WithLabelValues(t.name).Set(1)
		case t.paused && !stop:
			r.cl.ResumeFetchTopics(t.cfg.Topics...)
			t.paused = false
			r.m.paused.WithLabelValues(t.name).Set(0)
		}
	}
}

// bufferLimit is the share of memory_limit that buffers and the files
// waiting for their upload may hold: half. The other half is for what the
// buffers do not count: the Kafka client's fetches (memory_limit/8 with
// records smaller than a fetch), the record being decoded (at most
// memory_limit/4 of buffers), a file being assembled and the garbage the
// Go runtime has not collected yet (run sets the runtime's soft limit to
// ¾ memory_limit above what is not buffers: HeldBytes).
func (r *Runner) bufferLimit() int64 { return int64(r.cfg.MemoryLimit) / 2 }

// flushOverLimit flushes the largest healthy buffers, main and dead-letter
// alike, to files (committed by the next cut) while total, the bytes held
// against the buffer limit, is over it, until the buffers flushed bring it
// down to three quarters of it. It returns the bytes held then: the files
// it wrote wait for their upload and still count (they are the buffers'
// bytes, handed to the uploader), so a flush frees memory only as the
// uploads land.
func (r *Runner) flushOverLimit(ctx context.Context, total int64) int64 {
	limit := r.bufferLimit()
	if total <= limit {
		return total
	}
	for _, t := range r.tables {
		for _, s := range t.sinks() {
			if t.failing || total <= limit*3/4 {
				continue
			}
			b := s.w.HeldBytes()
			target := max(0, b-(total-limit*3/4))
			if err := s.w.FlushLargest(ctx, target); err != nil {
				r.reset(ctx, t, fmt.Errorf("flush %s: %w", s.uri, err))
				break
			}
			total -= b - s.w.HeldBytes()
			s.files = append(s.files, s.w.TakeFinished()...)
		}
	}
	return r.heldBytes()
}

// HeldBytes is the bytes held against memory_limit's share for buffers
// (every table's buffers and the files waiting for their upload) at the
// poll loop's last pass. It is safe to call from any goroutine; run uses
// it to tell buffers from the rest of the heap (its soft memory limit).
func (r *Runner) HeldBytes() int64 { return r.held.Load() }

// heldBytes is what counts against the memory limit: every table's buffers
// and the files waiting for their upload.
func (r *Runner) heldBytes() int64 {
	total := r.inflight.Load()
	for _, t := range r.tables {
		total += t.buffered()
	}
	return total
}

func (t *table) sinks() []*sink {
	if t.dlq == nil {
		return []*sink{t.main}
	}
	return []*sink{t.main, t.dlq}
}

func (t *table) buffered() int64 {
	var b int64
	for _, s := range t.sinks() {
		b += s.w.HeldBytes()
	}
	return b
}
