package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Run consumes until ctx is cancelled (or, with UntilCaughtUp, until caught
// up), then stops fetching, flushes and commits everything buffered within
// Config.ShutdownTimeout, leaves the group and returns nil. It returns an
// error when it cannot go on (a record it may not dead-letter, a table it may
// not write) or when the final commit failed (nothing is lost: the
// uncommitted records are read again by the next run).
func (r *Runner) Run(ctx context.Context) error {
	if r.ran.Swap(true) {
		return errors.New("ingest: Runner.Run called twice")
	}
	defer r.closeStores()
	cl, err := kgo.NewClient(r.kopts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	r.fetch.setApply(func(maxBytes, maxPartBytes int32) {
		cl.UpdateFetchMaxBytes(maxBytes, maxPartBytes)
		r.m.fetchBytes.Set(float64(maxBytes))
	})
	r.mu.Lock()
	r.cl, r.adm = cl, kadm.NewClient(cl)
	now := time.Now()
	for _, t := range r.tables {
		t.nextCommit = now.Add(t.cfg.Flush.CommitInterval)
	}
	r.mu.Unlock()
	// The group is joined in the background as soon as the client exists;
	// its callbacks use r.cl and r.adm, so they wait for this.
	close(r.started)
	bgctx, bgcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer bgcancel()
	for _, t := range r.tables {
		r.workers.Add(1)
		go r.committer(bgctx, t)
	}
	r.workers.Add(1)
	go r.watchKafka(bgctx)

	if r.opts.UntilCaughtUp {
		lctx, lcancel := context.WithTimeout(ctx, time.Minute)
		ends, err := r.adm.ListCommittedOffsets(lctx, r.topics...)
		lcancel()
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			r.mu.Lock()
			r.stopping = true
			r.cond.Broadcast()
			r.mu.Unlock()
			bgcancel()
			r.workers.Wait()
			cl.Close()
			return fmt.Errorf("list end offsets of %v: %w", r.topics, err)
		}
		r.targets = map[tp]int64{}
		ends.Each(func(o kadm.ListedOffset) { r.targets[tp{o.Topic, o.Partition}] = o.Offset })
		r.log.Info("consuming until caught up", "partitions", len(r.targets), "end_offsets", endOffsets(r.targets))
	}
	maxBytes, _ := r.fetch.sizes()
	r.log.Info("started", "group", r.cfg.Kafka.GroupID, "topics", r.topics, "fetch_max_bytes", maxBytes)

	caughtUp := false
	for ctx.Err() == nil {
		pctx, cancel := context.WithDeadline(ctx, r.nextDeadline())
		r.mu.Lock()
		r.wakePoll = cancel
		if r.woken { // a commit finished since the last poll
			r.woken = false
			cancel()
		}
		r.mu.Unlock()
		// Everything the client has buffered, up to pollRecords: franz-go
		// fetches again from a broker only once the fetch it buffered from
		// it is drained, so taking all of it lets the next fetch run while
		// this one is decoded (with polls of up to 10,000 records, the poll
		// that drained a fetch of 30,000 was followed by one that waited
		// for the broker).
		fetches := cl.PollRecords(pctx, pollRecords(r.cfg.MemoryLimit))
		r.dec.largestPoll = max(r.dec.largestPoll, fetches.NumRecords())
		r.mu.Lock()
		r.wakePoll = nil
		r.mu.Unlock()
		cancel()
		if fetches.IsClientClosed() {
			break
		}
		r.mu.Lock()
		err := r.fatal // a committer's
		if err == nil {
			err = r.process(ctx, fetches)
		}
		if err == nil {
			err = r.kafkaFatal()
		}
		if err == nil {
			r.maintain(ctx)
		}
		if err == nil && r.caughtUp(ctx) {
			// Cut now and go on polling: a failed commit is retried by the
			// committer and dropped buffers are read again before Run may
			// stop.
			r.cutAll(ctx)
			caughtUp = r.caughtUp(ctx) && r.allCommitted()
		}
		r.stop(err)
		fatal := r.fatal
		r.updateReady()
		r.mu.Unlock()
		cl.AllowRebalance()
		if fatal != nil || caughtUp {
			break
		}
	}
	return r.shutdown(ctx, caughtUp, bgcancel)
}

// shutdown commits everything buffered, stops the committers and leaves the
// group.
func (r *Runner) shutdown(ctx context.Context, caughtUp bool, stopCommitters context.CancelFunc) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ShutdownTimeout)
	defer cancel()
	r.mu.Lock()
	err := r.fatal
	if err == nil {
		r.cl.PauseFetchTopics(r.topics...)
		err = r.commitAll(sctx)
	}
	r.stopping = true
	r.cond.Broadcast()
	r.mu.Unlock()
	stopCommitters()
	r.workers.Wait()
	r.mu.Lock()
	for _, t := range r.tables {
		t.upCancel()
	}
	r.commitGroupOffsets(sctx)
	for _, t := range r.tables {
		for _, s := range t.sinks() {
			s.log.WaitCheckpoints() // background checkpoints of the last commits
		}
	}
	r.closing = true
	r.updateReady()
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.cl.CloseAllowingRebalance(); close(done) }()
	select {
	case <-done:
	case <-time.After(max(time.Until(deadlineOf(sctx)), 5*time.Second)):
		r.log.Warn("leaving the group took longer than the shutdown timeout")
	}
	if err != nil {
		return err
	}
	r.log.Info("stopped", "caught_up", caughtUp)
	return nil
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// pollRecords is the most records a poll takes: memory_limit/4096, at
// least 10,000. A poll that drains the client's buffered fetches lets it
// fetch the next ones while the poll is decoded, so both are held at once;
// for small records, whose kgo.Record and decode job take a few hundred
// bytes each beside the value, the cap keeps what a poll holds near
// 1/16 of the limit (300,000 records of 22 bytes at a limit of 64 MiB
// peaked at 0.99-1.08 of the limit above the baseline when polls took
// everything buffered, 0.61-0.70 with polls of 10,000; 0.66 with this cap).
func pollRecords(limit ByteSize) int {
	return max(10_000, int(int64(limit)/4096))
}

// nextDeadline is when the poll loop must wake up to commit.
func (r *Runner) nextDeadline() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := time.Now().Add(time.Second)
	for _, t := range r.tables {
		at := t.nextCommit
		if t.reg != nil && t.reg.waiting && t.reg.retryAt.Before(at) {
			at = t.reg.retryAt
		}
		if at.Before(d) {
			d = at
		}
	}
	return d
}
