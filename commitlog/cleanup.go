package commitlog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/protolake/protolake/storage"
)

// CleanupLog deletes log entries (commits, checkpoints, their .crc side
// files and version checksum files) that are older than the table's
// delta.logRetentionDuration (default 30 days) and lie strictly below a
// retained checkpoint, so that every retained version stays
// reconstructable: with R the oldest version whose commit is younger than
// the retention, and C the newest complete checkpoint at or below R that
// parses (unreadable ones are skipped; this Table remembers the checkpoints
// it parsed), only files of versions < C whose modification time is past the
// retention are deleted, oldest first (a version's commit last). It returns
// the deleted keys.
//
// It reads only the expired head of the log, from the oldest entry to R
// (see logHead), not the whole of _delta_log.
func (t *Table) CleanupLog(ctx context.Context) ([]string, error) {
	s, err := t.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	retention := durationProp(s.Metadata().Configuration, PropLogRetentionDuration, DefaultLogRetention)
	return t.cleanupLogBefore(ctx, t.cfg.Now().Add(-retention), s.Version())
}

// cleanupLogBefore deletes what CleanupLog does for the retention cutoff,
// looking at versions up to upTo (a version whose commit exists; nothing at
// or above the newest checkpoint below it is deleted).
func (t *Table) cleanupLogBefore(ctx context.Context, cutoff time.Time, upTo int64) ([]string, error) {
	objs, err := t.logHead(ctx, cutoff, upTo)
	if err != nil {
		return nil, err
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
		v      int64
		commit bool
		key    string
	}
	var victims []victim
	for _, o := range objs {
		v, ok := cleanableVersion(o.Key)
		if !ok || v >= c || o.ModTime.After(cutoff) {
			continue
		}
		victims = append(victims, victim{v, o.Key == CommitKey(v), o.Key})
	}
	// Oldest version first, and a version's commit after its other files,
	// so that an interrupted cleanup leaves a log whose oldest commit is
	// its head (what probeHead looks for).
	sort.Slice(victims, func(i, j int) bool {
		a, b := victims[i], victims[j]
		if a.v != b.v {
			return a.v < b.v
		}
		if a.commit != b.commit {
			return b.commit
		}
		return a.key < b.key
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

// cleanableVersion returns the version of a log entry that cleanup may
// delete behind a checkpoint: commits, checkpoints (classic, multi-part,
// V2), version checksum files (N.crc) and the ".<name>.crc" side files
// Hadoop's local filesystem writes next to each of them.
func cleanableVersion(key string) (int64, bool) {
	name, ok := strings.CutPrefix(key, LogDir)
	if !ok {
		return 0, false
	}
	if hidden, ok := strings.CutPrefix(name, "."); ok {
		inner, ok := strings.CutSuffix(hidden, ".crc")
		if !ok {
			return 0, false
		}
		return cleanableVersion(LogDir + inner)
	}
	if v, ok := versionChecksum(name); ok {
		return v, true
	}
	lf := parseLogFileName(key)
	return lf.version, lf.kind != kindOther
}

// versionChecksum parses "%020d.crc", Delta's version checksum file.
func versionChecksum(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, ".crc")
	if !ok || len(digits) != 20 || !allDigits(digits) {
		return 0, false
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	return v, err == nil
}

// headPageSize is how many keys one page of the head listing asks for;
// tests lower it.
var headPageSize = 1000

// logHead returns the log entries cleanup has to look at: those of versions
// from the oldest in the log up to R, the first version whose commit is
// younger than cutoff, or up to upTo if no commit up to it is. Versions at
// or after R are never deleted, so nothing after R is read:
//
//   - A store that lists a directory in pages (storage.PageLister: S3,
//     HDFS) is listed in key order from the start of the numbered entries
//     ("_delta_log/0…", where versions begin) until the listing passes R:
//     one page of headPageSize keys per headPageSize entries of the head.
//   - A store that can only describe a key (storage.Statter: a local disk,
//     whose directories have no order) is probed by name: the oldest commit
//     by a binary search over [0, upTo] (cleanup deletes the oldest first,
//     so the commits that exist are a contiguous run), then, for each
//     version from there to R, its commit, classic checkpoint, checksum
//     file and Hadoop .crc side files. Multi-part and V2 checkpoints have
//     names that cannot be guessed: they are neither used as a base nor
//     deleted by this path (deleting less is always safe).
//   - Any other store lists the whole of _delta_log.
func (t *Table) logHead(ctx context.Context, cutoff time.Time, upTo int64) ([]storage.Object, error) {
	if pl, ok := t.store.(storage.PageLister); ok {
		objs, err := listHead(ctx, pl, cutoff, upTo)
		if !errors.Is(err, errors.ErrUnsupported) {
			return objs, err
		}
	}
	if st, ok := t.store.(storage.Statter); ok {
		objs, err := probeHead(ctx, st, cutoff, upTo)
		if !errors.Is(err, errors.ErrUnsupported) {
			return objs, err
		}
	}
	objs, err := t.store.List(ctx, LogDir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", LogDir, err)
	}
	return objs, nil
}

// logVersion returns the version a numbered log entry's name starts with.
func logVersion(key string) (int64, bool) {
	name, ok := strings.CutPrefix(key, LogDir)
	if !ok || len(name) < 20 || !allDigits(name[:20]) {
		return 0, false
	}
	v, err := strconv.ParseInt(name[:20], 10, 64)
	return v, err == nil
}

// listHead is logHead for a PageLister.
func listHead(ctx context.Context, pl storage.PageLister, cutoff time.Time, upTo int64) ([]storage.Object, error) {
	var out []storage.Object
	after := ""
	for {
		page, err := pl.ListPage(ctx, LogDir+"0", after, headPageSize)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", LogDir, err)
		}
		for _, o := range page {
			v, ok := logVersion(o.Key)
			if !ok {
				continue
			}
			if v > upTo {
				return out, nil
			}
			out = append(out, o)
			// A version's checkpoints and checksum sort before its
			// commit, so at R's commit everything up to R is read.
			if o.Key == CommitKey(v) && o.ModTime.After(cutoff) {
				return out, nil
			}
		}
		if len(page) < headPageSize {
			return out, nil
		}
		after = page[len(page)-1].Key
	}
}

// probeHead is logHead for a Statter.
func probeHead(ctx context.Context, st storage.Statter, cutoff time.Time, upTo int64) ([]storage.Object, error) {
	stat := func(key string) (storage.Object, bool, error) {
		o, err := st.Stat(ctx, key)
		if errors.Is(err, storage.ErrNotExist) {
			return o, false, nil
		}
		if err != nil {
			return o, false, fmt.Errorf("log cleanup: %w", err)
		}
		return o, true, nil
	}
	if upTo < 0 {
		return nil, nil
	}
	if _, ok, err := stat(CommitKey(upTo)); err != nil || !ok {
		return nil, err
	}
	// The oldest commit: the first of the contiguous run that ends at upTo.
	lo, hi := int64(0), upTo
	for lo < hi {
		mid := lo + (hi-lo)/2
		_, ok, err := stat(CommitKey(mid))
		if err != nil {
			return nil, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	var out []storage.Object
	for v := lo; v <= upTo; v++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, key := range []string{
			CheckpointKey(v),
			fmt.Sprintf("%s%020d.crc", LogDir, v),
			LogDir + "." + strings.TrimPrefix(CheckpointKey(v), LogDir) + ".crc",
			LogDir + "." + strings.TrimPrefix(CommitKey(v), LogDir) + ".crc",
		} {
			o, ok, err := stat(key)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, o)
			}
		}
		o, ok, err := stat(CommitKey(v))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
			if o.ModTime.After(cutoff) {
				break
			}
		}
	}
	return out, nil
}
