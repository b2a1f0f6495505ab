package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/schema"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partsOf returns the assigned partitions of t, sorted.
func (r *Runner) partsOf(t *table) []*partState {
	var ps []*partState
	for _, p := range r.parts {
		if p.t == t {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *partState) int {
		if a.tp.topic != b.tp.topic {
			if a.tp.topic < b.tp.topic {
				return -1
			}
			return 1
		}
		return int(a.tp.part - b.tp.part)
	})
	return ps
}

// commitAll cuts every table and waits until everything is committed,
// the committers retrying failed commits, until ctx ends. r.mu is held.
func (r *Runner) commitAll(ctx context.Context) error {
	r.cutAll(ctx)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(r.cfg.ShutdownTimeout)
	}
	for {
		busy := r.waitIdle(r.tables, deadline)
		if r.fatal != nil {
			return r.fatal
		}
		if len(busy) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			t := busy[0]
			return fmt.Errorf("commit %s before stopping: not done within %v (the uncommitted records will be read again)", t.name, r.cfg.ShutdownTimeout)
		}
		// A table is failing: its committer retries; wait for it.
		r.waitChange(min(time.Second, time.Until(deadline)))
	}
}

// waitChange waits (r.mu held, released meanwhile) for a broadcast or d.
func (r *Runner) waitChange(d time.Duration) {
	timer := time.AfterFunc(d, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	r.cond.Wait()
	timer.Stop()
}

// errReset reports that a table's buffers were dropped instead of committed.
var errReset = errors.New("buffers dropped")

// committed records a successful commit in metrics, logs and the hook.
func (r *Runner) committed(t *table, s *sink, dead bool, res commitResult, ranges []commitlog.OffsetRange, start time.Time) {
	d := time.Since(start)
	r.m.commits.WithLabelValues(s.name).Inc()
	r.m.rows.WithLabelValues(s.name).Add(float64(res.rows))
	r.m.bytes.WithLabelValues(s.name).Add(float64(res.bytes))
	r.m.files.WithLabelValues(s.name).Add(float64(res.files))
	r.m.commitLatency.WithLabelValues(s.name).Observe(d.Seconds())
	r.m.version.WithLabelValues(s.name).Set(float64(res.version))
	r.m.lastCommit.WithLabelValues(s.name).SetToCurrentTime()
	if res.checkpointErr != nil {
		r.log.Warn("checkpoint failed (the commit stands)", "table", s.name, "version", res.version, "err", res.checkpointErr)
	}
	r.log.Info("committed", "table", s.name, "version", res.version, "rows", res.rows, "files", res.files, "bytes", res.bytes,
		"partitions", len(ranges), "evolved", res.evolved, "resolved_ambiguous", res.alreadyThere, "duration", d)
	if r.opts.OnCommit != nil {
		r.opts.OnCommit(CommitEvent{Table: t.name, DeadLetter: dead, Version: res.version, Rows: res.rows, Files: res.files, Bytes: res.bytes,
			Offsets: ranges, Evolved: res.evolved, Duration: d})
	}
}

// commitFailed handles a failed commit of sink s of table t: fenced (another
// instance committed one of its partitions) or a table whose rows cannot be
// kept → drop the buffers and re-read; a table this version may not write
// → the error Run stops on; anything else → keep the batch (true) and retry
// with backoff. Called by the committer, with r.mu held.
func (r *Runner) commitFailed(ctx context.Context, t *table, s *sink, err error) (keep bool, stop error) {
	switch {
	case errors.Is(err, commitlog.ErrFenced):
		r.m.conflicts.WithLabelValues(s.name).Inc()
		r.drop(t, err)
		return false, nil
	case errors.Is(err, commitlog.ErrAmbiguousCommit):
		// It may have landed: retrying could commit the rows twice, and
		// keeping the buffers past it could drop later ones. Re-read from
		// the watermarks instead (if they cannot be read now, a stale one
		// leads to a fence and another reset, never to a duplicate).
		r.m.retries.WithLabelValues(s.name).Inc()
		r.drop(t, err)
		return false, nil
	case errors.Is(err, commitlog.ErrUnsupportedProtocol), errors.As(err, new(*schema.IncompatibleError)):
		return false, err
	}
	r.m.retries.WithLabelValues(s.name).Inc()
	if !t.failing {
		t.failingSince = time.Now()
		// One WARN per episode; the retries log at DEBUG.
		r.log.Warn("commit failed; keeping the files and retrying", "table", s.name, "err", err)
	} else {
		r.log.Debug("commit failed again", "table", s.name, "retry_in", t.backoff, "err", err)
	}
	t.failing = true
	t.backoff = min(max(2*t.backoff, 200*time.Millisecond), 30*time.Second)
	t.retryAt = time.Now().Add(t.backoff)
	return true, nil
}

// stop records err, unless it is nil or an error is recorded already, as
// the error Run stops on: the committers take no more batches, the poll
// loop ends, and NotReady reports it. The poll loop calls it with what
// process and kafkaFatal return, a committer with what finishBatch returns.
// r.mu is held.
func (r *Runner) stop(err error) {
	if err != nil && r.fatal == nil {
		r.fatal = err
	}
}

// reset drops every buffered row and uncommitted file of t and seeks its
// partitions back to their watermarks, re-read from the table: the records
// are consumed again and nothing is committed twice. Only the poll loop and
// the rebalance callbacks (which run while it does not poll) may call it:
// franz-go's SetOffsets must not race a poll. r.mu is held.
func (r *Runner) reset(ctx context.Context, t *table, why error) {
	r.drop(t, why)
	if !t.committing && r.fatal == nil {
		r.reseek(ctx, t)
	}
}

// drop drops every buffered row, uncommitted file and batch of t and marks
// its partitions for a reseek, which the poll loop does once no commit of t
// is running (a running one may still land); until then their records are
// skipped. r.mu is held.
func (r *Runner) drop(t *table, why error) {
	r.log.Warn("dropping buffered rows; re-reading from the table's watermarks", "table", t.name, "reason", why)
	r.m.resets.WithLabelValues(t.name).Inc()
	t.skipBatch = true
	t.failing, t.backoff = false, 0
	if t.reg != nil {
		clear(t.reg.ids)
	}
	t.gen++
	t.pending = nil
	t.upCancel()
	t.upCtx, t.upCancel = context.WithCancel(context.Background())
	for _, s := range t.sinks() {
		s.up.drop()
		s.resetWriter()
	}
	for _, p := range r.partsOf(t) {
		p.first, p.dFirst, p.dead = -1, -1, false
	}
	t.reseek = true
	r.cond.Broadcast()
}

// reseek re-reads t's watermarks and seeks its partitions to them. r.mu is
// held.
func (r *Runner) reseek(ctx context.Context, t *table) {
	t.reseek = false
	t.skipBatch = true // the records polled so far are from before the seek
	parts := r.partsOf(t)
	if len(parts) == 0 {
		return
	}
	// Fresh watermarks: another instance may have committed. When the table
	// cannot be read, the known ones stay (a stale one only causes another
	// fence and reset).
	var msnap, dsnap *commitlog.Snapshot
	msnap, _ = t.main.latest(ctx)
	if t.dlq != nil {
		dsnap, _ = t.dlq.latest(ctx)
	}
	seeks := map[string]map[int32]kgo.EpochOffset{}
	for _, p := range parts {
		app := commitlog.KafkaAppID(r.cfg.Kafka.GroupID, p.tp.topic, p.tp.part)
		if msnap != nil {
			if v, ok := msnap.TxnVersion(app); ok {
				p.mainWM = v
			}
		}
		if dsnap != nil {
			if v, ok := dsnap.TxnVersion(app); ok {
				p.dlqWM = v
			}
		}
		p.first, p.dFirst, p.dead = -1, -1, false
		p.last = p.seek() - 1
		if seeks[p.tp.topic] == nil {
			seeks[p.tp.topic] = map[int32]kgo.EpochOffset{}
		}
		seeks[p.tp.topic][p.tp.part] = kgo.EpochOffset{Epoch: -1, Offset: p.seek()}
	}
	r.cl.SetOffsets(seeks)
}
