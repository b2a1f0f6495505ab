package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/writer"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Parallel decoding (Config.DecodeWorkers > 1):
//
//   - A table's main sink has one writer per decode shard. Each poll's
//     records of a table are split into runs of equal payload bytes, in
//     poll order (split; a shard gets at least minShardBytes, so a smaller
//     poll takes fewer shards). When every shard takes part, the runs are
//     chunksPerShard per shard, and the workers take them in poll order
//     as they become free, each writing its own shard (worker i, shard
//     i): a worker slowed down (by the Kafka client's goroutines, the
//     collector, the machine) takes fewer, so the workers finish together
//     whatever the partitions' shares of the poll; otherwise there is one
//     run per shard taking part, written by whichever worker takes it. A
//     Kafka partition's rows may be in several shards' files; each file
//     holds them in offset order (a shard's runs are written in poll
//     order).
//   - process runs in three phases, all while the poll loop holds r.mu.
//     Prepare (poll loop): the same checks as the sequential path before a
//     write (stale offsets, control records, unframing), a job list, and
//     its split over the shards. Decode (a pool of at most DecodeWorkers
//     goroutines, the poll loop one of them): each shard's writer writes
//     its runs in order, one goroutine at a time; it stops at its first
//     write that fails for another reason than the record, so every job
//     it leaves unwritten comes after that failure in poll order, where
//     the apply phase resets the table; it touches nothing but its
//     writer, its sink's uploader (which has its own mutex) and the
//     atomic memory counters. Apply (poll loop), in the
//     order the records were polled: dead letters, resets and fatal errors
//     exactly as the sequential path decides them, and the partitions'
//     consumed offsets (first, last, dFirst). A record whose turn in the
//     apply phase never comes (its table was reset, or Run is stopping on
//     an error) was possibly written by its shard: a reset discarded it
//     already, and on a fatal error its table is dropped.
//   - The cut flushes every shard (in parallel, one goroutine per shard
//     with open files) before it takes the partitions' offset ranges, so a
//     commit's txns still cover only offsets whose rows are in its files or
//     earlier ones. A reset (fenced, ambiguous, lost partitions) discards
//     every shard: it needs r.mu, so it never runs during the decode phase,
//     and it drops whatever that phase wrote.
//   - Memory: every shard's buffers count against the buffer limit; the
//     largest shards' buffers are flushed first (shards.FlushLargest).
//     Large records (memory_limit/64 or more) decode one at a time across
//     the workers (decodeBatch.large), so at most one record is decoded at
//     the scale memory_limit reserves for it; after writing one, a worker
//     checks the limit against every shard's last known size and flushes
//     its own largest buffers if it is over, and collects garbage after a
//     very large one (memory_limit/16), as the sequential path does.
//
// Tables fed through a schema registry decode sequentially: resolving a
// schema id may wait for the registry or evolve the table mid-poll, which
// the sequential path orders record by record.

// shards is a sink's writers: one when the sink is written sequentially
// (dead-letter and registry-fed tables, DecodeWorkers = 1), one per decode
// shard otherwise. Its methods mirror writer.Writer's over all of them. Not
// safe for concurrent use, except that different goroutines may write
// different shards (ws[i]) at once.
type shards struct {
	ws []*writer.Writer
}

// newShards builds n writers (at least one) for table st.
func newShards(cfg writer.Config, st *schema.Table, store storage.Store, n int) (*shards, error) {
	s := &shards{ws: make([]*writer.Writer, max(1, n))}
	for i := range s.ws {
		w, err := writer.NewTable(cfg, st, store)
		if err != nil {
			return nil, err
		}
		s.ws[i] = w
	}
	return s, nil
}

// Write writes a record to the first shard: the sequential path.
func (s *shards) Write(ctx context.Context, msg []byte, k writer.Kafka) error {
	return s.ws[0].Write(ctx, msg, k)
}

// Flush flushes every shard, those with open buffers in parallel, and
// returns their finished files, shard by shard.
func (s *shards) Flush(ctx context.Context) ([]writer.File, error) {
	files := make([][]writer.File, len(s.ws))
	err := s.each(func(i int, w *writer.Writer) error {
		var err error
		files[i], err = w.Flush(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []writer.File
	for _, f := range files {
		out = append(out, f...)
	}
	return out, nil
}

// FlushExpired writes the buffers older than MaxAge of every shard, those
// with open buffers in parallel.
func (s *shards) FlushExpired(ctx context.Context) error {
	return s.each(func(_ int, w *writer.Writer) error { return w.FlushExpired(ctx) })
}

// each runs f for every shard with open buffers, in parallel when there is
// more than one, and returns the first error.
func (s *shards) each(f func(i int, w *writer.Writer) error) error {
	var open []int
	for i, w := range s.ws {
		if w.OpenFiles() > 0 {
			open = append(open, i)
		}
	}
	switch len(open) {
	case 0:
		return nil
	case 1:
		return f(open[0], s.ws[open[0]])
	}
	errs := make([]error, len(s.ws))
	var wg sync.WaitGroup
	for _, i := range open[1:] {
		wg.Go(func() { errs[i] = f(i, s.ws[i]) })
	}
	errs[open[0]] = f(open[0], s.ws[open[0]])
	wg.Wait()
	return errors.Join(errs...)
}

// TakeFinished returns the files every shard finished since the last call.
func (s *shards) TakeFinished() []writer.File {
	var out []writer.File
	for _, w := range s.ws {
		out = append(out, w.TakeFinished()...)
	}
	return out
}

// HeldBytes is the memory the buffers of every shard take, their spares'
// included (writer.Writer.HeldBytes): what counts against the memory limit.
func (s *shards) HeldBytes() int64 {
	var n int64
	for _, w := range s.ws {
		n += w.HeldBytes()
	}
	return n
}

// FlushLargest writes buffers as files, the largest shard's largest first,
// until the shards hold at most target bytes (HeldBytes).
func (s *shards) FlushLargest(ctx context.Context, target int64) error {
	for {
		total := s.HeldBytes()
		if total <= target {
			return nil
		}
		var big *writer.Writer
		var b int64
		for _, w := range s.ws {
			if n := w.HeldBytes(); n > b {
				big, b = w, n
			}
		}
		if big == nil {
			return nil
		}
		if err := big.FlushLargest(ctx, max(0, b-(total-target))); err != nil {
			return err
		}
	}
}

// Discard drops the buffers and unreported files of every shard.
func (s *shards) Discard() {
	for _, w := range s.ws {
		w.Discard()
	}
}

// parallel reports whether t's records are decoded by the shards' pool.
func (t *table) parallel() bool { return len(t.main.w.ws) > 1 }

// decoders is the number of decode shards of t's main sink for cfg.
func decoders(cfg *Config, tc *TableConfig) int {
	if tc.registryFed() {
		return 1
	}
	return max(1, cfg.DecodeWorkers)
}

// decodeJob is one polled record of a table decoded in parallel.
type decodeJob struct {
	ps      *partState
	rec     *kgo.Record
	payload []byte // the message to write (unframed); nil: nothing to write
	bad     error  // unframing or decoding failed: a dead letter
	err     error  // the write failed otherwise: the table is reset
	written bool   // its shard wrote it (or tried to)
}

// decodeTask is one shard of a table in a poll. A table's tasks (one per
// shard) are reused across polls.
type decodeTask struct {
	t       *table
	w       *writer.Writer
	failing bool // t's commits fail: its buffers are not flushed for the limit
	stopped bool // a write failed for another reason than the record
	held    atomic.Int64
}

// decodeRun is a run of one table's jobs of a poll, in poll order, for one
// of its shards: shard, or when shard is -1 the shard of the worker that
// takes it (chunksPerShard runs per shard).
type decodeRun struct {
	sh    *tableShare
	jobs  []int // indices into decodeBatch.jobs
	shard int
}

// chunksPerShard is how many runs a poll's records of a table are cut into
// per shard when every shard takes part: a worker that falls behind takes
// fewer, so the other does not wait for it at the end of the poll (with
// one run per shard, the faster of two workers waited 0-20 % of a
// poll's decoding, by turns, for the one that shared its core with the
// Kafka client or the collector).
const chunksPerShard = 8

// decodeBatch is the records of one poll for the tables decoded in
// parallel. It belongs to the poll loop and is reused across polls.
type decodeBatch struct {
	jobs   []decodeJob
	tasks  []*decodeTask // the tasks of the shards taking part in the poll
	runs   []decodeRun   // in poll order by table
	shares map[*table]*tableShare
	active []*tableShare        // the shares with jobs, in poll order
	last   map[*partState]int64 // the last offset prepared per partition
	lags   []partLag
	others int64      // bytes buffered by the writers no task writes
	large  sync.Mutex // held by a worker decoding a large record
	// minShard is the least payload split gives a shard: minShardBytes
	// when 0 (tests lower it: export_test.go).
	minShard int64
	// largestPoll is the most records one poll returned (tests read it:
	// export_test.go).
	largestPoll int
}

// tableShare is one table's records of a poll, to be split across its
// shards.
type tableShare struct {
	jobs  []int // the jobs to write, indices into decodeBatch.jobs in poll order
	bytes int64 // their payloads' size
	tasks []*decodeTask
}

// minShardBytes is the least payload a shard is given out of a poll: a
// smaller poll is written by fewer shards (one when it holds less than
// twice this), so a slow stream does not spread its rows over a file per
// shard and table partition.
const minShardBytes = 256 << 10

type partLag struct {
	ps  *partState
	hwm int64
}

// prepare adds the records of one polled partition of a table decoded in
// parallel: the sequential path's checks before a write. r.mu is held.
func (r *Runner) prepare(fp kgo.FetchTopicPartition, ps *partState) {
	b := &r.dec
	if b.last == nil {
		b.last, b.shares = map[*partState]int64{}, map[*table]*tableShare{}
	}
	last, ok := b.last[ps]
	if !ok {
		last = ps.last
	}
	t := ps.t
	sh := b.shares[t]
	if sh == nil {
		sh = &tableShare{}
		for _, w := range t.main.w.ws {
			sh.tasks = append(sh.tasks, &decodeTask{t: t, w: w})
		}
		b.shares[t] = sh
	}
	for _, rec := range fp.Records {
		if t.skipBatch || t.reseek {
			break
		}
		if rec.Offset <= last || rec.Offset <= ps.mainWM {
			continue // already consumed or committed (a stale fetch)
		}
		last = rec.Offset
		j := decodeJob{ps: ps, rec: rec}
		if !rec.Attrs.IsControl() {
			if payload, err := unframe(t.cfg.Framing, rec.Value); err != nil {
				j.bad = err
			} else {
				j.payload = payload
				if len(sh.jobs) == 0 {
					b.active = append(b.active, sh)
				}
				sh.jobs = append(sh.jobs, len(b.jobs))
				sh.bytes += int64(len(payload))
			}
		}
		b.jobs = append(b.jobs, j)
	}
	b.last[ps] = last
	if fp.HighWatermark >= 0 {
		b.lags = append(b.lags, partLag{ps, fp.HighWatermark})
	}
}

// split cuts each table's records into runs of equal payload bytes in poll
// order (decoding costs about the same per byte), one per shard taking
// part or, when they all do, chunksPerShard per shard for the workers to
// take as they become free, so that no worker waits for another at the
// end of the poll: a Kafka partition's records may go to several shards.
// The exactly-once rule does not depend on which shard writes a record:
// the cut flushes every shard, a reset discards every shard, and the
// apply phase follows the poll order.
func (b *decodeBatch) split() {
	least := cmp.Or(b.minShard, minShardBytes)
	for _, sh := range b.active {
		n := min(len(sh.tasks), max(1, int(sh.bytes/least)))
		for _, tk := range sh.tasks[:n] {
			tk.failing, tk.stopped = tk.t.failing, false
			b.tasks = append(b.tasks, tk)
		}
		runs, dynamic := int64(n), n > 1 && n == len(sh.tasks)
		if dynamic {
			runs *= chunksPerShard
		}
		first := len(b.runs)
		var pos int64
		for _, i := range sh.jobs {
			k := first + int(pos*runs/max(1, sh.bytes))
			pos += int64(len(b.jobs[i].payload))
			for len(b.runs) <= k {
				shard := len(b.runs) - first
				if dynamic {
					shard = -1
				}
				if len(b.runs) < cap(b.runs) {
					b.runs = b.runs[:len(b.runs)+1] // keeps its jobs' capacity
				} else {
					b.runs = append(b.runs, decodeRun{})
				}
				run := &b.runs[len(b.runs)-1]
				run.sh, run.jobs, run.shard = sh, run.jobs[:0], shard
			}
			b.runs[k].jobs = append(b.runs[k].jobs, i)
		}
	}
}

// decodePrepared decodes the prepared records on the pool and applies the
// outcomes in poll order. stop is the error the sequential tables' records
// stopped on (then nothing is decoded); it returns the error Run must stop
// on. r.mu is held (the workers do not take it).
func (r *Runner) decodePrepared(ctx context.Context, stop error) error {
	b := &r.dec
	defer b.reset()
	if len(b.jobs) == 0 {
		return stop
	}
	if b.split(); stop == nil && len(b.runs) > 0 {
		b.others = 0
		for _, t := range r.tables {
			b.others += t.buffered()
		}
		for _, tk := range b.tasks {
			n := tk.w.HeldBytes()
			tk.held.Store(n)
			b.others -= n
		}
		// Worker w takes the runs in poll order and writes each to its
		// shard or, when it has none, to shard w of its table (a table
		// decoded in parallel has DecodeWorkers shards): a shard's runs
		// are written in poll order, by one goroutine at a time.
		var next atomic.Int64
		work := func(w int) {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(b.runs)) {
					return
				}
				run := &b.runs[i]
				k := run.shard
				if k < 0 {
					k = w
				}
				r.decodeRun(ctx, run.sh.tasks[k], run.jobs)
			}
		}
		var wg sync.WaitGroup
		for w := range min(len(b.runs), r.cfg.DecodeWorkers) - 1 {
			wg.Go(func() { work(w + 1) })
		}
		work(0)
		wg.Wait()
	}
	return r.applyDecoded(ctx, stop)
}

// decodeRun writes one run of jobs to tk's shard in order, on a pool
// goroutine. The shard stops at its first write that fails for another
// reason than the record (its later runs are not written either): the
// apply phase resets the table there.
func (r *Runner) decodeRun(ctx context.Context, tk *decodeTask, jobs []int) {
	if tk.stopped {
		return
	}
	for _, i := range jobs {
		j := &r.dec.jobs[i]
		j.written = true
		if !r.decodeJob(ctx, tk, j) {
			tk.stopped = true
			return
		}
	}
}

// decodeJob writes one job to tk's shard; false means the write failed for
// another reason than the record (j.err).
func (r *Runner) decodeJob(ctx context.Context, tk *decodeTask, j *decodeJob) bool {
	limit := int64(r.cfg.MemoryLimit)
	size := int64(len(j.rec.Value))
	if size >= limit/64 {
		r.dec.large.Lock()
		defer r.dec.large.Unlock()
	}
	err := tk.w.Write(ctx, j.payload, writer.Kafka{Topic: j.rec.Topic, Partition: j.rec.Partition, Offset: j.rec.Offset, Timestamp: j.rec.Timestamp})
	switch {
	case err == nil:
	case isDecodeError(err):
		j.bad = err
		if errors.Is(err, writer.ErrRecordTooLarge) {
			// Its decoding took up to memory_limit/4 of buffers, garbage
			// now: collect it before the next large record (and the dead
			// letter) copies more.
			runtime.GC()
		}
		return true // dead-lettered, collected after that, in the apply phase
	default:
		j.err = err
		return false
	}
	if size >= limit/64 && !tk.failing {
		// A large record can take the buffers over the limit before the
		// next maintain (as in the sequential path).
		if err := r.limitShard(ctx, tk); err != nil {
			j.err = fmt.Errorf("flush: %w", err)
			return false
		}
	}
	if size >= limit/16 {
		runtime.GC() // its copies (a page, a file cut for it) are garbage now
	}
	return true
}

// limitShard flushes tk's largest buffers while the bytes held against the
// buffer limit — the other writers, every shard as last seen by its worker,
// the files being uploaded — are over it, down to three quarters of it.
func (r *Runner) limitShard(ctx context.Context, tk *decodeTask) error {
	b := &r.dec
	own := tk.w.HeldBytes()
	tk.held.Store(own)
	total := b.others + r.inflight.Load()
	for _, o := range b.tasks {
		total += o.held.Load()
	}
	limit := r.bufferLimit()
	if total <= limit {
		return nil
	}
	err := tk.w.FlushLargest(ctx, max(0, own-(total-limit*3/4)))
	tk.held.Store(tk.w.HeldBytes())
	return err
}

// applyDecoded applies the decoded jobs in poll order, as the sequential
// path (handle) does record by record, and returns the error Run must stop
// on (stop, or a dead letter that cannot be written). r.mu is held.
func (r *Runner) applyDecoded(ctx context.Context, stop error) error {
	b := &r.dec
	var unapplied map[*table]bool
	for i := range b.jobs {
		j := &b.jobs[i]
		ps, rec := j.ps, j.rec
		t := ps.t
		if t.skipBatch || t.reseek || stop != nil {
			if j.written && !t.skipBatch && !t.reseek {
				// Stopping on an error: its row is buffered past the
				// partition's consumed offsets.
				if unapplied == nil {
					unapplied = map[*table]bool{}
				}
				unapplied[t] = true
			}
			continue
		}
		t.countConsumed()
		if j.err != nil {
			r.reset(ctx, t, fmt.Errorf("write to %s: %w", t.main.uri, j.err))
			continue
		}
		if j.bad != nil {
			if err := r.deadLetter(ctx, ps, rec, j.bad); errors.Is(err, errReset) {
				continue
			} else if err != nil {
				stop = err
				continue
			}
			r.afterLarge(ctx, rec) // a large dead letter
		}
		ps.consumed(rec.Offset)
	}
	for _, t := range r.tables {
		if unapplied[t] {
			r.drop(t, fmt.Errorf("stopping: %w", stop))
		}
	}
	for _, l := range b.lags {
		if r.parts[l.ps.tp] == l.ps {
			r.m.lag.WithLabelValues(l.ps.tp.topic, strconv.Itoa(int(l.ps.tp.part))).Set(float64(max(0, l.hwm-l.ps.last-1)))
		}
	}
	return stop
}

// reset empties the batch for the next poll, keeping its capacity.
func (b *decodeBatch) reset() {
	clear(b.jobs)
	b.jobs = b.jobs[:0]
	b.tasks = b.tasks[:0]
	b.runs = b.runs[:0]
	for _, sh := range b.active {
		sh.jobs, sh.bytes = sh.jobs[:0], 0
	}
	b.active = b.active[:0]
	clear(b.last)
	b.lags = b.lags[:0]
}
