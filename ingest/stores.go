package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/deadline"
	"github.com/protolake/protolake/storage/open"
)

// openStore opens the store of table t's sink name at uri, with
// Config.Storage's deadline on every request and its health reported to t.
func (r *Runner) openStore(ctx context.Context, t *table, name, uri string) (storage.Store, error) {
	tc := t.cfg
	// The table's s3 options apply on top of the URL's query options.
	op := r.opts.Opener.WithS3(tc.S3)
	s, err := op.Open(ctx, uri)
	if err != nil {
		return nil, err // names the URL, redacted
	}
	if r.opts.WrapStore != nil {
		s = r.opts.WrapStore(name, s)
	}
	ds := deadline.New(s, r.cfg.Storage.RequestTimeout, func(res deadline.Result) { r.observeStorage(t, name, res) })
	t.health.stores = append(t.health.stores, ds)
	return ds, nil
}

// storeHealth is what the storage requests of a table's stores say about
// them. Its mutex guards the fields below; stores is set before Run.
type storeHealth struct {
	stores []*deadline.Store

	mu       sync.Mutex
	failing  bool
	since    time.Time
	failures int
}

// observeStorage records one finished storage request of table t: a failure
// starts an episode (one WARN with the error), the next success ends it
// (one INFO).
func (r *Runner) observeStorage(t *table, name string, res deadline.Result) {
	if res.Duration > r.cfg.Storage.SlowRequest {
		r.m.slowRequests.WithLabelValues(name, string(res.Op)).Inc()
	}
	h := &t.health
	if res.Err != nil {
		r.m.storageErrors.WithLabelValues(name, string(res.Op)).Inc()
		h.mu.Lock()
		first := !h.failing
		if first {
			h.failing, h.since, h.failures = true, time.Now(), 0
		}
		h.failures++
		h.mu.Unlock()
		if first {
			r.log.Warn("storage requests failing", "table", name, "op", res.Op, "key", res.Key, "duration", res.Duration.Round(time.Millisecond), "err", res.Err)
		}
		return
	}
	h.mu.Lock()
	was, since, n := h.failing, h.since, h.failures
	h.failing = false
	h.mu.Unlock()
	if was {
		r.log.Info("storage requests succeed again", "table", name, "after", time.Since(since).Round(time.Millisecond), "failed_requests", n)
	}
}

// storageProblem says why t's storage is not healthy ("" if it is): a
// request failed and none succeeded since, a request has been running for
// longer than Storage.SlowRequest, or uploads are being retried.
func (r *Runner) storageProblem(t *table) string {
	h := &t.health
	h.mu.Lock()
	failing := h.failing
	h.mu.Unlock()
	switch {
	case failing:
		return "storage requests of " + t.name + " fail"
	case t.uploadsFailing.Load() > 0:
		return "uploads to " + t.name + " fail"
	}
	for _, s := range h.stores {
		if o := s.Oldest(); !o.IsZero() && time.Since(o) > r.cfg.Storage.SlowRequest {
			return fmt.Sprintf("a storage request of %s has been running for %v (storage.slow_request %v)", t.name, time.Since(o).Round(100*time.Millisecond), r.cfg.Storage.SlowRequest)
		}
	}
	return ""
}

func (r *Runner) closeStores() {
	for _, t := range r.tables {
		_ = open.Close(t.main.store)
		if t.dlq != nil {
			_ = open.Close(t.dlq.store)
		}
	}
}
