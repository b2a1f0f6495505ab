package commitlog

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// CleanupLog deletes log entries (commits, checkpoints and their .crc side
// files) that are older than the table's delta.logRetentionDuration (default
// 30 days) and lie strictly below a retained checkpoint, so that every
// retained version stays reconstructable: with R the oldest version whose
// commit is younger than the retention, and C the newest complete checkpoint
// at or below R that parses (unreadable ones are skipped; this Table
// remembers the checkpoints it parsed), only files of versions < C whose modification time is past
// the retention are deleted, oldest first. It returns the deleted keys.
func (t *Table) CleanupLog(ctx context.Context) ([]string, error) {
	s, err := t.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	retention := durationProp(s.Metadata().Configuration, PropLogRetentionDuration, DefaultLogRetention)
	return t.cleanupLogBefore(ctx, t.cfg.Now().Add(-retention))
}

func (t *Table) cleanupLogBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	objs, err := t.store.List(ctx, LogDir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", LogDir, err)
	}
	l := parseListing(objs)
	// R: the oldest retained version.
	r := l.latest
	var versions []int64
	for v := range l.commits {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	modTimes := map[string]time.Time{}
	for _, o := range objs {
		modTimes[o.Key] = o.ModTime
	}
	for _, v := range versions {
		if modTimes[l.commits[v].key].After(cutoff) {
			r = v
			break
		}
	}
	// C: the newest checkpoint at or below R that this process has parsed
	// (reading it now if need be). A checkpoint nobody can read is no base:
	// deleting the commits behind it would make the table unreadable.
	var cps []int64
	for v := range l.checkpoints {
		if v <= r && v > 0 {
			cps = append(cps, v)
		}
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i] > cps[j] })
	c := int64(-1)
	for _, v := range cps {
		if err := t.verifyCheckpoint(ctx, l.checkpoints[v]); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			t.cfg.Logger.Warn("log cleanup: checkpoint unreadable, not deleting anything behind it", "version", v, "err", err)
			continue
		}
		c = v
		break
	}
	if c <= 0 {
		return nil, nil
	}
	type victim struct {
		v   int64
		key string
	}
	var victims []victim
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, LogDir)
		crc := strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".crc")
		lf := parseLogFileName(LogDir + strings.TrimSuffix(strings.TrimPrefix(name, "."), ".crc"))
		if crc && lf.kind == kindOther {
			// Spark's ".00000000000000000001.json.crc" side files.
			continue
		}
		if lf.kind == kindOther || lf.version >= c || o.ModTime.After(cutoff) {
			continue
		}
		victims = append(victims, victim{lf.version, o.Key})
	}
	sort.Slice(victims, func(i, j int) bool {
		if victims[i].v != victims[j].v {
			return victims[i].v < victims[j].v
		}
		return victims[i].key < victims[j].key
	})
	var deleted []string
	for _, vi := range victims {
		if err := t.store.Delete(ctx, vi.key); err != nil {
			return deleted, fmt.Errorf("delete %s: %w", vi.key, err)
		}
		deleted = append(deleted, vi.key)
	}
	if len(deleted) > 0 {
		t.cfg.Logger.Info("cleaned up expired log entries", "deleted", len(deleted), "belowCheckpoint", c)
	}
	return deleted, nil
}

// verifyCheckpoint parses the checkpoint made of parts unless this Table
// already parsed it (checkpoints are immutable: a key and size seen parsed
// stay parsable).
func (t *Table) verifyCheckpoint(ctx context.Context, parts []logFile) error {
	id := checkpointID(parts)
	t.mu.Lock()
	ok := t.parsed[id]
	t.mu.Unlock()
	if ok {
		return nil
	}
	s := newSnapshot()
	if err := loadCheckpoint(ctx, t.store, parts, s); err != nil {
		return err
	}
	if !s.hasProtocol || !s.hasMetadata {
		return fmt.Errorf("checkpoint %s has no protocol or metaData: %w", id, ErrCorrupt)
	}
	t.noteParsed(id)
	return nil
}

// checkpointID names a checkpoint by its first part's key and the sizes of
// its parts.
func checkpointID(parts []logFile) string {
	var b strings.Builder
	for i, p := range parts {
		if i == 0 {
			b.WriteString(p.key)
		}
		fmt.Fprintf(&b, ":%d", p.size)
	}
	return b.String()
}

// noteParsed records that the checkpoint id was parsed successfully.
func (t *Table) noteParsed(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.parsed == nil {
		t.parsed = map[string]bool{}
	}
	t.parsed[id] = true
}
