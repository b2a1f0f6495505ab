package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/protolake/protolake/commitlog"
)

// allCommitted reports whether nothing consumed is waiting for a commit.
func (r *Runner) allCommitted() bool {
	for _, t := range r.tables {
		if t.failing || !t.idle() || t.reseek || len(t.main.files) > 0 || (t.dlq != nil && len(t.dlq.files) > 0) {
			return false
		}
	}
	for _, p := range r.parts {
		if p.first >= 0 || p.dead {
			return false
		}
	}
	return true
}

// caughtUp reports, with UntilCaughtUp, whether every partition of the
// topics reached the end offset seen at start: an assigned one by what this
// Runner consumed, any other by its table's watermark (committed by another
// instance, or by a previous run). Partitions a dead member still holds in
// the group are therefore waited for, not skipped.
func (r *Runner) caughtUp(ctx context.Context) bool {
	if !r.opts.UntilCaughtUp {
		return false
	}
	done := func() bool {
		for k, target := range r.targets {
			if target <= 0 {
				continue
			}
			if p := r.parts[k]; p != nil {
				if p.last+1 < target {
					return false
				}
				continue
			}
			if wm, ok := r.wmCache[k]; !ok || wm+1 < target {
				return false
			}
		}
		return true
	}
	if done() {
		return true
	}
	if time.Since(r.wmCheckedAt) < time.Second {
		return false
	}
	// Re-read the watermarks of the partitions this Runner does not hold.
	r.wmCheckedAt = time.Now()
	if r.wmCache == nil {
		r.wmCache = map[tp]int64{}
	}
	snaps := map[*table]*commitlog.Snapshot{}
	for k := range r.targets {
		if r.parts[k] != nil {
			continue
		}
		t := r.byTopic[k.topic]
		if t == nil {
			continue
		}
		snap, ok := snaps[t]
		if !ok {
			var err error
			if snap, err = t.main.log.Update(ctx, r.wmSnaps[t]); err != nil {
				r.log.Warn("read watermarks", "table", t.name, "err", err)
				return false
			}
			snaps[t] = snap
			if r.wmSnaps == nil {
				r.wmSnaps = map[*table]*commitlog.Snapshot{}
			}
			r.wmSnaps[t] = snap
		}
		if v, ok := snap.TxnVersion(commitlog.KafkaAppID(r.cfg.Kafka.GroupID, k.topic, k.part)); ok {
			r.wmCache[k] = v
		}
	}
	return done()
}

// endOffsets renders the caught-up targets for the log, sorted:
// "topic/0=125 topic/1=98".
func endOffsets(targets map[tp]int64) string {
	keys := make([]tp, 0, len(targets))
	for k := range targets {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b tp) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.part - b.part)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s/%d=%d", k.topic, k.part, targets[k])
	}
	return strings.Join(parts, " ")
}
