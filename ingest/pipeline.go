package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/writer"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The pipeline (see also /docs/operations.md, "Uploads and commits"):
//
//   - The poll loop decodes records into the tables' writers (with
//     Config.DecodeWorkers > 1 on a pool of goroutines, one writer per
//     shard: decode.go). A writer that finishes a file encodes it and hands
//     it to its sink's uploader, which keeps the file's segments (the
//     writer does not touch them again: no copy) and returns at once; the
//     upload runs in its own goroutine, at most
//     Storage.MaxUploads at a time, retried with backoff until it succeeds
//     or the table is reset.
//   - A cut (poll loop or rebalance callback, under r.mu) flushes every
//     buffer of a table and moves its finished files and, per partition,
//     the offsets consumed since the last cut into the table's pending
//     batch. Because every buffer is flushed, the offsets of a cut are all
//     in the files of that cut or of earlier ones: a commit of everything
//     pending covers exactly its files (the exactly-once rule).
//   - One committer goroutine per table takes the whole pending batch,
//     waits for its uploads, and commits the dead letters and then the main
//     table without r.mu; it takes r.mu only to move the watermarks. A
//     failed commit puts the batch back in front of whatever was cut
//     meanwhile and retries with backoff.
//   - A reset (fenced, ambiguous commit, lost partitions) bumps the table's
//     generation, cancels its uploads and drops its batches; a commit still
//     running finishes on its own and its result is ignored, and the
//     partitions are re-read from the watermarks once it is done.

// upload is one data file being uploaded in the background.
type upload struct {
	key  string
	size int64
	done chan struct{}
	err  error // set before done is closed
}

// uploader is the store a sink's writer writes data files to: PutSegments
// (writer.SegmentStore) keeps the file's segments and uploads them in the
// background; the rest passes through.
type uploader struct {
	storage.Store
	r *Runner
	t *table

	mu      sync.Mutex
	uploads map[string]*upload
}

func newUploader(r *Runner, t *table, s storage.Store) *uploader {
	return &uploader{Store: s, r: r, t: t, uploads: map[string]*upload{}}
}

// Put implements storage.Store: it keeps a copy of the file and uploads it
// in the background. The writers call PutSegments instead and nothing
// calls Put today; it is here so that a Put through the uploader is
// counted and uploaded like their files rather than reaching the embedded
// store's Put synchronously, uncounted.
func (u *uploader) Put(ctx context.Context, key string, rd io.Reader) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rd); err != nil {
		return fmt.Errorf("copy data file %s: %w", key, err)
	}
	return u.PutSegments(ctx, key, [][]byte{buf.Bytes()}, int64(buf.Len()))
}

// PutSegments implements writer.SegmentStore: it keeps the writer's
// segments of the file, which the writer no longer touches, and uploads
// them in the background. Called by the writer, with r.mu held. The file
// is not copied: the bytes a flush moves out of the buffers are the bytes
// that wait for their upload, which memory_limit counts (inflight).
func (u *uploader) PutSegments(_ context.Context, key string, segs [][]byte, size int64) error {
	up := &upload{key: key, size: size, done: make(chan struct{})}
	u.mu.Lock()
	u.uploads[key] = up
	u.mu.Unlock()
	u.r.inflight.Add(up.size)
	u.t.uploading.Add(up.size)
	go u.run(u.t.upCtx, up, segs)
	return nil
}

// run uploads one file, retrying until it lands or ctx ends.
func (u *uploader) run(ctx context.Context, up *upload, segs [][]byte) {
	defer close(up.done)
	defer func() {
		u.r.inflight.Add(-up.size)
		u.t.uploading.Add(-up.size)
	}()
	select {
	case u.r.uploadSlots <- struct{}{}:
	case <-ctx.Done():
		up.err = ctx.Err()
		return
	}
	defer func() { <-u.r.uploadSlots }()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := u.Store.Put(ctx, up.key, writer.SegmentsReader(segs, up.size))
		if err == nil {
			if attempt > 1 {
				u.t.uploadsFailing.Add(-1)
			}
			return
		}
		if ctx.Err() != nil {
			up.err = ctx.Err()
			if attempt > 1 {
				u.t.uploadsFailing.Add(-1)
			}
			return
		}
		if attempt == 1 {
			u.t.uploadsFailing.Add(1)
		}
		u.r.m.uploadFailures.WithLabelValues(u.t.name).Inc()
		u.r.log.Debug("upload failed; retrying", "table", u.t.name, "key", up.key, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// take returns and forgets the upload of key (nil if unknown).
func (u *uploader) take(key string) *upload {
	u.mu.Lock()
	defer u.mu.Unlock()
	up := u.uploads[key]
	delete(u.uploads, key)
	return up
}

// drop forgets every upload (their context was cancelled).
func (u *uploader) drop() {
	u.mu.Lock()
	clear(u.uploads)
	u.mu.Unlock()
}

// batch is what a table has cut and not committed yet.
type batch struct {
	gen  int64
	main batchPart
	dlq  batchPart
}

// batchPart is one sink's share of a batch: its files (with their uploads
// and proto fingerprints), the offsets per partition the commit's txns
// cover, the proto version the sink wrote when it was cut, and for a
// registry-fed table the schema ids of its records.
type batchPart struct {
	files   []writer.File
	fps     []string
	uploads []*upload
	ranges  []commitlog.OffsetRange
	ver     sinkVersion
	regIDs  map[int]bool
}

func (p *batchPart) empty() bool { return len(p.files) == 0 && len(p.ranges) == 0 }

// merge appends q (cut later) to p. The later proto version wins: it is a
// compatible evolution of the earlier one, so every file is valid under it.
func (p *batchPart) merge(q batchPart) {
	if p.empty() {
		*p = q
		return
	}
	if q.empty() {
		return
	}
	p.files = append(p.files, q.files...)
	p.fps = append(p.fps, q.fps...)
	p.uploads = append(p.uploads, q.uploads...)
	p.ver = q.ver
	if q.regIDs != nil {
		if p.regIDs == nil {
			p.regIDs = map[int]bool{}
		}
		for id := range q.regIDs {
			p.regIDs[id] = true
		}
	}
next:
	for _, r := range q.ranges {
		for i := range p.ranges {
			if o := &p.ranges[i]; o.Topic == r.Topic && o.Partition == r.Partition {
				o.First, o.Last = min(o.First, r.First), max(o.Last, r.Last)
				continue next
			}
		}
		p.ranges = append(p.ranges, r)
	}
}

func (b *batch) empty() bool { return b == nil || (b.main.empty() && b.dlq.empty()) }

// cut flushes every buffer of t and moves its finished files and consumed
// offsets into t.pending, for the committer. r.mu is held.
func (r *Runner) cut(ctx context.Context, t *table) error {
	t.nextCommit = time.Now().Add(t.cfg.Flush.CommitInterval)
	for _, s := range t.sinks() {
		files, err := s.w.Flush(ctx)
		if err != nil {
			r.reset(ctx, t, fmt.Errorf("flush %s: %w", s.uri, err))
			return errReset
		}
		s.files = append(s.files, files...)
	}
	b := &batch{gen: t.gen}
	parts := r.partsOf(t)
	if t.dlq != nil {
		for _, p := range parts {
			if p.dead && p.dFirst >= 0 {
				b.dlq.ranges = append(b.dlq.ranges, commitlog.OffsetRange{Topic: p.tp.topic, Partition: p.tp.part, First: p.dFirst, Last: p.last})
				p.dFirst, p.dead = -1, false
			}
		}
		b.dlq.files, b.dlq.fps = t.dlq.takeFiles()
		b.dlq.uploads = uploadsOf(t.dlq, b.dlq.files)
		b.dlq.ver = t.dlq.version()
	}
	for _, p := range parts {
		if p.first >= 0 {
			b.main.ranges = append(b.main.ranges, commitlog.OffsetRange{Topic: p.tp.topic, Partition: p.tp.part, First: p.first, Last: p.last})
			p.first = -1
		}
	}
	b.main.files, b.main.fps = t.main.takeFiles()
	b.main.uploads = uploadsOf(t.main, b.main.files)
	b.main.ver = t.main.version()
	if t.reg != nil && !b.main.empty() {
		b.main.regIDs = maps.Clone(t.reg.ids)
		clear(t.reg.ids)
	}
	if b.empty() {
		return nil
	}
	if t.pending == nil {
		t.pending = b
	} else {
		t.pending.dlq.merge(b.dlq)
		t.pending.main.merge(b.main)
	}
	r.cond.Broadcast()
	return nil
}

func uploadsOf(s *sink, files []writer.File) []*upload {
	ups := make([]*upload, len(files))
	for i, f := range files {
		ups[i] = s.up.take(f.Path)
	}
	return ups
}

// cutAll cuts every table. r.mu is held.
func (r *Runner) cutAll(ctx context.Context) {
	for _, t := range r.tables {
		_ = r.cut(ctx, t)
	}
}

// idle reports whether t has nothing cut that is not committed.
func (t *table) idle() bool { return t.pending == nil && !t.committing }

// waitIdle waits, with r.mu held (released while waiting), until every
// table in ts is idle or failing, r.fatal is set, or the deadline passes. It
// returns the tables that are not idle.
func (r *Runner) waitIdle(ts []*table, deadline time.Time) []*table {
	timer := time.AfterFunc(time.Until(deadline), func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	for {
		var busy []*table
		failing := false
		for _, t := range ts {
			if !t.idle() {
				busy = append(busy, t)
				failing = failing || t.failing
			}
		}
		if len(busy) == 0 || r.fatal != nil || !time.Now().Before(deadline) || failing {
			return busy
		}
		r.cond.Wait()
	}
}

// committer commits t's pending batches until r.stopping is set.
func (r *Runner) committer(ctx context.Context, t *table) {
	defer r.workers.Done()
	for {
		r.mu.Lock()
		for !r.stopping && (t.pending == nil || r.fatal != nil) {
			r.cond.Wait()
		}
		if r.stopping {
			r.mu.Unlock()
			return
		}
		if wait := time.Until(t.retryAt); t.failing && wait > 0 {
			r.mu.Unlock()
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			continue
		}
		b := t.pending
		t.pending, t.committing = nil, true
		r.mu.Unlock()

		s, err := r.commitBatch(ctx, t, b)

		r.mu.Lock()
		t.committing = false
		r.stop(r.finishBatch(ctx, t, b, s, err))
		r.cond.Broadcast()
		// The poll loop decides what follows a commit (a reseek, the next
		// cut, stopping when caught up): do not let it sleep.
		if r.wakePoll != nil {
			r.wakePoll()
		} else {
			r.woken = true
		}
		r.updateReady()
		r.mu.Unlock()
	}
}

// commitBatch waits for b's uploads and commits the dead letters, then the
// main table, without r.mu. It returns the sink whose commit failed.
func (r *Runner) commitBatch(ctx context.Context, t *table, b *batch) (*sink, error) {
	start := time.Now()
	// Dead letters first: the dead-letter table is never behind the main one.
	steps := []struct {
		s    *sink
		part *batchPart
	}{{t.dlq, &b.dlq}, {t.main, &b.main}}
	for _, step := range steps {
		s, part := step.s, step.part
		if s == nil || part.empty() {
			continue
		}
		for i, up := range part.uploads {
			if up == nil {
				return s, fmt.Errorf("data file %s of %s: %w", part.files[i].Path, s.uri, errReset)
			}
			select {
			case <-up.done:
			case <-ctx.Done():
				return s, ctx.Err()
			}
			if up.err != nil {
				return s, fmt.Errorf("upload %s to %s: %w", up.key, s.uri, up.err)
			}
		}
		params := map[string]any{"outputMode": "Append", "source": "kafka"}
		if s == t.dlq {
			params["deadLetters"] = true
		} else {
			params = registryParams(params, part.ver.reg, part.regIDs)
		}
		res, err := s.commit(ctx, r.cfg.Kafka.GroupID, part.files, part.fps, part.ver, part.ranges, commitlog.OpStreamingUpdate, params)
		if err != nil {
			return s, err
		}
		r.mu.Lock()
		r.applyCommit(ctx, t, s, b.gen, res, part.ranges, start)
		r.mu.Unlock()
		*part = batchPart{} // committed: a retry of the batch skips it
	}
	return nil, nil
}

// applyCommit moves the watermarks after a successful commit of sink s
// (unless t was reset since the batch was cut) and records it. r.mu is held.
func (r *Runner) applyCommit(ctx context.Context, t *table, s *sink, gen int64, res commitResult, ranges []commitlog.OffsetRange, start time.Time) {
	dead := s == t.dlq
	offsets := map[string]map[int32]kgo.EpochOffset{}
	if gen == t.gen {
		for _, rg := range ranges {
			p := r.parts[tp{rg.Topic, rg.Partition}]
			if p == nil || p.t != t {
				continue
			}
			if dead {
				p.dlqWM = max(p.dlqWM, rg.Last)
				continue
			}
			p.mainWM = max(p.mainWM, rg.Last)
			if offsets[rg.Topic] == nil {
				offsets[rg.Topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[rg.Topic][rg.Partition] = kgo.EpochOffset{Epoch: -1, Offset: p.mainWM + 1}
		}
	}
	if dead {
		t.dead.Add(res.rows)
	} else {
		t.rows.Add(res.rows)
		t.commits.Add(1)
		t.version.Store(res.version)
	}
	r.committed(t, s, dead, res, ranges, start)
	if len(offsets) > 0 && !r.closing {
		r.cl.CommitOffsets(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			if err != nil && !errors.Is(err, context.Canceled) {
				r.log.Debug("commit group offsets (monitoring only)", "err", err)
			}
		})
	}
}

// finishBatch handles the outcome of a batch commit. It returns the error
// Run must stop on. r.mu is held.
func (r *Runner) finishBatch(ctx context.Context, t *table, b *batch, s *sink, err error) error {
	if b.gen != t.gen {
		// Reset while committing: the poll loop re-reads the watermarks
		// now that the commit has landed or failed (t.reseek).
		return nil
	}
	if err == nil {
		if t.failing {
			r.log.Info("commits succeed again", "table", t.name, "after", time.Since(t.failingSince).Round(time.Millisecond))
		}
		t.failing, t.backoff = false, 0
		return nil
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // stopping: what is not committed is read again next time
	}
	if errors.Is(err, errReset) {
		// The batch cannot be committed: its offsets must be read again,
		// or the next commit's watermark would skip them.
		r.drop(t, err)
		return nil
	}
	keep, stop := r.commitFailed(ctx, t, s, err)
	if keep {
		// Kept: retried first, before what was cut meanwhile.
		if t.pending != nil {
			b.dlq.merge(t.pending.dlq)
			b.main.merge(t.pending.main)
		}
		if !b.empty() {
			t.pending = b
		}
	}
	return stop
}
