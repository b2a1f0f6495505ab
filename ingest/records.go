package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"

	"github.com/protolake/protolake/writer"
	"github.com/twmb/franz-go/pkg/kgo"
)

// process hands every polled record to its table. It returns the error Run
// must stop on (the records after it are left unconsumed).
func (r *Runner) process(ctx context.Context, fetches kgo.Fetches) error {
	for _, t := range r.tables {
		t.skipBatch = false
		if t.reseek && !t.committing && r.fatal == nil {
			r.reseek(ctx, t) // dropped by its committer; skips this poll's records
		}
	}
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		r.noteFetchError(topic, err)
		// One WARN per partition and error; repeats log at DEBUG.
		if r.fetchLogged == nil {
			r.fetchLogged = map[tp]string{}
		}
		if k := (tp{topic, p}); r.fetchLogged[k] != err.Error() {
			r.fetchLogged[k] = err.Error()
			r.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		} else {
			r.log.Debug("fetch error", "topic", topic, "partition", p, "err", err)
		}
	})
	var stop error
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		ps := r.parts[tp{fp.Topic, fp.Partition}]
		if ps == nil || stop != nil {
			return
		}
		if ps.t.parallel() {
			r.prepare(fp, ps)
			return
		}
		for _, rec := range fp.Records {
			if ps.t.skipBatch || ps.t.reseek {
				return
			}
			if stop = r.handle(ctx, ps, rec); stop != nil {
				return
			}
		}
		if fp.HighWatermark >= 0 {
			r.m.lag.WithLabelValues(fp.Topic, strconv.Itoa(int(fp.Partition))).Set(float64(max(0, fp.HighWatermark-ps.last-1)))
		}
	})
	return r.decodePrepared(ctx, stop)
}

// handle writes one record to its table or dead-letter table. It returns
// the error Run must stop on; a record that reset its table (a failed
// write, re-read from the watermarks) or waits for the schema registry is
// not consumed, and is no error.
func (r *Runner) handle(ctx context.Context, ps *partState, rec *kgo.Record) error {
	t := ps.t
	if rec.Offset <= ps.last || rec.Offset <= ps.mainWM {
		return nil // already consumed or committed (a stale fetch)
	}
	t.countConsumed()
	if !rec.Attrs.IsControl() {
		var bad error
		var payload []byte
		var err error
		if t.reg != nil {
			var wait bool
			if payload, bad, wait = r.decodeRegistry(ctx, t, rec); wait {
				return nil // not consumed: read again once the registry answers
			}
		} else {
			payload, err = unframe(t.cfg.Framing, rec.Value)
		}
		if err != nil {
			bad = err
		} else if bad == nil {
			err := t.main.w.Write(ctx, payload, writer.Kafka{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp})
			switch {
			case err == nil:
			case isDecodeError(err):
				bad = err
				if errors.Is(err, writer.ErrRecordTooLarge) {
					// Its decoding took up to memory_limit/4 of buffers,
					// garbage now: collect it before the dead letter
					// copies the record twice more (rare, so the cost of
					// a collection does not matter).
					runtime.GC()
				}
			default:
				r.reset(ctx, t, fmt.Errorf("write to %s: %w", t.main.uri, err))
				return nil
			}
		}
		if bad != nil {
			if err := r.deadLetter(ctx, ps, rec, bad); errors.Is(err, errReset) {
				return nil
			} else if err != nil {
				return err
			}
		}
		r.afterLarge(ctx, rec)
	}
	ps.consumed(rec.Offset)
	return nil
}

// isDecodeError reports whether a write failed because of its record (a
// dead letter). errors.AsType, unlike errors.As with a local target, does
// not move the target to the heap for every record written.
func isDecodeError(err error) bool {
	_, ok := errors.AsType[*writer.DecodeError](err)
	return ok
}

// afterLarge keeps the memory limit after a large record was written (to
// its table or as a dead letter). A large record can take the buffers over
// the limit before the next maintain: check now (summing the buffers is too
// costly per small record). A very large one leaves copies of itself as
// garbage (a dead letter's encoding, the page of a file cut for it):
// collect them now rather than let them pile up to the runtime's soft
// limit next to the next large record. Rare, so the collection's cost does
// not matter.
func (r *Runner) afterLarge(ctx context.Context, rec *kgo.Record) {
	if int64(len(rec.Value)) >= int64(r.cfg.MemoryLimit)/64 {
		r.flushOverLimit(ctx, r.heldBytes())
	}
	if int64(len(rec.Value)) >= int64(r.cfg.MemoryLimit)/16 {
		runtime.GC()
	}
}

// consumed records that the partition's record at off was handled: written
// to its table or dead-letter table, or a control record.
func (p *partState) consumed(off int64) {
	if p.first < 0 {
		p.first = off
	}
	if p.dFirst < 0 && off > p.dlqWM {
		p.dFirst = off
	}
	p.last = off
}

// deadLetter writes a rejected record to the dead-letter table (unless it is
// already there). It returns errReset when the write failed and reset the
// table (the record is read again), and the error Run must stop on when the
// table has no dead-letter table.
func (r *Runner) deadLetter(ctx context.Context, ps *partState, rec *kgo.Record, bad error) error {
	t := ps.t
	if t.dlq == nil {
		return fmt.Errorf("table %s: record %s/%d@%d cannot be decoded and dead_letter is disabled: %w", t.name, rec.Topic, rec.Partition, rec.Offset, bad)
	}
	if rec.Offset <= ps.dlqWM {
		return nil // committed to the dead-letter table before a crash
	}
	d := deadLetter{value: rec.Value, key: rec.Key, err: bad.Error(), byteOffset: -1, message: t.main.pin.Message, fingerprint: t.main.pin.Fingerprint, table: t.name}
	var de *writer.DecodeError
	if errors.As(bad, &de) {
		d.fieldPath, d.byteOffset = de.Path, int64(de.Offset)
	}
	r.dlqBuf = appendDeadLetter(r.dlqBuf[:0], &d)
	err := t.dlq.w.Write(ctx, r.dlqBuf, writer.Kafka{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp})
	if cap(r.dlqBuf) > 1<<20 {
		r.dlqBuf = nil // not kept at the size of a large record (memory_limit does not see it)
	}
	if err != nil {
		r.reset(ctx, t, fmt.Errorf("write to %s: %w", t.dlq.uri, err))
		return errReset
	}
	ps.dead = true
	r.m.deadLetters.WithLabelValues(t.name).Inc()
	r.log.Debug("dead letter", "table", t.name, "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", bad)
	return nil
}
