package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adjustOffsets replaces the group's committed offsets of newly assigned
// partitions with the tables' watermarks + 1, or the configured start.
func (r *Runner) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	select {
	case <-r.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	snaps := map[*sink]*commitlog.Snapshot{}
	snapOf := func(s *sink) (*commitlog.Snapshot, error) {
		if snap, ok := snaps[s]; ok {
			return snap, nil
		}
		snap, err := s.latest(ctx)
		if err != nil {
			return nil, fmt.Errorf("read watermarks of %s: %w", s.uri, err)
		}
		snaps[s] = snap
		return snap, nil
	}
	var states []*partState
	var needStart []string
	for topic, parts := range offsets {
		t := r.byTopic[topic]
		if t == nil {
			continue
		}
		for part := range parts {
			p := &partState{t: t, tp: tp{topic, part}, mainWM: -1, dlqWM: -1, start: -1, first: -1, dFirst: -1}
			app := commitlog.KafkaAppID(r.cfg.Kafka.GroupID, topic, part)
			snap, err := snapOf(t.main)
			if err != nil {
				r.log.Error("cannot read a table on assignment; rejoining", "table", t.name, "err", err)
				return nil, err
			}
			if v, ok := snap.TxnVersion(app); ok {
				p.mainWM = v
			}
			if t.dlq != nil {
				dsnap, err := snapOf(t.dlq)
				if err != nil {
					r.log.Error("cannot read a table on assignment; rejoining", "table", t.dlq.name, "err", err)
					return nil, err
				}
				if v, ok := dsnap.TxnVersion(app); ok {
					p.dlqWM = v
				}
			}
			if p.mainWM < 0 && !slices.Contains(needStart, topic) {
				needStart = append(needStart, topic)
			}
			states = append(states, p)
		}
	}
	if len(needStart) > 0 {
		starts, err := r.startOffsets(ctx, needStart)
		if err != nil {
			r.log.Error("cannot list start offsets on assignment; rejoining", "err", err)
			return nil, err
		}
		for _, p := range states {
			if p.mainWM < 0 {
				o, ok := starts[p.tp]
				if !ok {
					return nil, fmt.Errorf("no start offset listed for %s/%d", p.tp.topic, p.tp.part)
				}
				p.start = o
			}
		}
	}
	r.warnExpired(ctx, states)
	out := make(map[string]map[int32]kgo.Offset, len(offsets))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range states {
		p.last = p.seek() - 1
		r.parts[p.tp] = p
		if out[p.tp.topic] == nil {
			out[p.tp.topic] = map[int32]kgo.Offset{}
		}
		out[p.tp.topic][p.tp.part] = kgo.NewOffset().At(p.seek()).WithEpoch(-1)
		r.log.Info("assigned", "table", p.t.name, "topic", p.tp.topic, "partition", p.tp.part, "offset", p.seek(), "watermark", p.mainWM, "dlq_watermark", p.dlqWM)
	}
	return out, nil
}

// warnExpired logs a WARN for each newly assigned partition whose table
// watermark is below the partition's log start: Kafka deleted the offsets in
// between (retention) before they were committed, so they are lost and the
// partition resumes at the log start (franz-go itself logs this only at
// INFO). A failed listing only skips the check.
func (r *Runner) warnExpired(ctx context.Context, states []*partState) {
	var topics []string
	for _, p := range states {
		if p.mainWM >= 0 && !slices.Contains(topics, p.tp.topic) {
			topics = append(topics, p.tp.topic)
		}
	}
	if len(topics) == 0 {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second) // never holds up the rebalance for long
	defer cancel()
	listed, err := r.adm.ListStartOffsets(lctx, topics...)
	if err != nil {
		r.log.Debug("list log start offsets (retention check)", "topics", topics, "err", err)
		return
	}
	for _, p := range states {
		o, ok := listed.Lookup(p.tp.topic, p.tp.part)
		if p.mainWM < 0 || !ok || o.Err != nil || o.Offset <= p.mainWM+1 {
			continue
		}
		lost := o.Offset - p.mainWM - 1
		r.m.expired.WithLabelValues(p.t.name).Add(float64(lost))
		r.log.Warn("Kafka deleted records before they were committed (retention): they are lost; resuming at the log start",
			"table", p.t.name, "topic", p.tp.topic, "partition", p.tp.part, "watermark", p.mainWM,
			"log_start", o.Offset, "first_lost", p.mainWM+1, "last_lost", o.Offset-1, "lost_offsets", lost)
	}
}

// startOffsets resolves kafka.start_offset for the topics' partitions.
func (r *Runner) startOffsets(ctx context.Context, topics []string) (map[tp]int64, error) {
	var (
		listed kadm.ListedOffsets
		err    error
	)
	switch so := r.cfg.Kafka.StartOffset; so {
	case "earliest":
		listed, err = r.adm.ListStartOffsets(ctx, topics...)
	case "latest":
		listed, err = r.adm.ListEndOffsets(ctx, topics...)
	default:
		ts, perr := time.Parse(time.RFC3339, so)
		if perr != nil {
			return nil, fmt.Errorf("kafka.start_offset: %w", perr)
		}
		listed, err = r.adm.ListOffsetsAfterMilli(ctx, ts.UnixMilli(), topics...)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list %s offsets: %w", r.cfg.Kafka.StartOffset, err)
	}
	out := map[tp]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[tp{o.Topic, o.Partition}] = o.Offset })
	return out, nil
}

func (r *Runner) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	<-r.started
	r.mu.Lock()
	r.joined = true
	r.updateReady()
	r.mu.Unlock()
	r.groupJoined()
	r.log.Debug("partitions assigned", "partitions", assigned)
}

// onRevoked commits the tables of the revoked partitions before they are
// released; if that fails their buffers are dropped (the next owner reads
// the records from the watermarks): never half of both.
func (r *Runner) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-r.started
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(revoked) == 0 {
		return
	}
	r.log.Info("partitions revoked", "partitions", revoked)
	affected := map[*table]bool{}
	for topic := range revoked {
		if t := r.byTopic[topic]; t != nil {
			affected[t] = true
		}
	}
	// The group waits rebalance_timeout for every member: commit within
	// most of it, and keep the rest for leaving the partitions.
	budget := min(r.cfg.ShutdownTimeout, r.cfg.Kafka.RebalanceTimeout*3/4)
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var ts []*table
	for _, t := range r.tables {
		if affected[t] {
			_ = r.cut(cctx, t)
			ts = append(ts, t)
		}
	}
	start := time.Now()
	failed := r.waitIdle(ts, start.Add(budget))
	gctx, gcancel := context.WithTimeout(ctx, r.cfg.Kafka.RebalanceTimeout/8)
	r.commitGroupOffsets(gctx)
	gcancel()
	r.forget(revoked)
	for _, t := range failed {
		why := "not committed within the rebalance budget"
		if t.failing {
			why = "commit failed"
		}
		r.reset(cctx, t, fmt.Errorf("partitions revoked: %s (%v)", why, time.Since(start).Round(time.Millisecond)))
	}
}

// onLost drops the buffers of the tables whose partitions were lost (the
// group moved on without us): whatever we hold may be committed by another
// instance now.
func (r *Runner) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-r.started
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log.Warn("partitions lost", "partitions", lost)
	r.joined = false
	r.updateReady()
	affected := map[*table]bool{}
	for topic := range lost {
		if t := r.byTopic[topic]; t != nil {
			affected[t] = true
		}
	}
	r.forget(lost)
	for _, t := range r.tables {
		if affected[t] {
			r.reset(ctx, t, errors.New("partitions lost"))
		}
	}
}

// commitGroupOffsets commits the group offsets of every assigned partition
// (its table watermark + 1) and waits: before leaving the group or releasing
// partitions. They are for lag monitoring only.
func (r *Runner) commitGroupOffsets(ctx context.Context) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for k, p := range r.parts {
		if p.mainWM < 0 {
			continue
		}
		if offsets[k.topic] == nil {
			offsets[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[k.topic][k.part] = kgo.EpochOffset{Epoch: -1, Offset: p.mainWM + 1}
	}
	if len(offsets) == 0 {
		return
	}
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			r.log.Warn("commit group offsets (monitoring only)", "err", err)
		}
	})
}

func (r *Runner) forget(parts map[string][]int32) {
	for topic, ps := range parts {
		for _, p := range ps {
			delete(r.parts, tp{topic, p})
			r.m.lag.DeleteLabelValues(topic, strconv.Itoa(int(p)))
		}
	}
}
