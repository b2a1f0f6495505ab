package commitlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// VacuumOptions selects what Vacuum may delete.
type VacuumOptions struct {
	// Retention is how old an unreferenced file must be (by modification
	// time), and how long ago a tombstone must have been written, before the
	// file may be deleted. Default: the table's
	// delta.deletedFileRetentionDuration (default 7 days).
	Retention time.Duration
	// RetainNothing makes the retention zero, as Spark's RETAIN 0 HOURS:
	// every unreferenced file may be deleted whatever its age (Retention
	// is then ignored). Below a non-zero table retention it needs
	// AllowShortRetention like any short retention.
	RetainNothing bool
	// AllowShortRetention permits a Retention below the table's
	// delta.deletedFileRetentionDuration, which can break readers of older
	// versions and concurrent writers whose files are not committed yet.
	AllowShortRetention bool
}

// VacuumCandidate is one file Vacuum would delete.
type VacuumCandidate struct {
	// Key is the file's key in the store (decoded, relative to the root).
	Key     string
	Size    int64
	ModTime time.Time
}

// ErrRetentionTooShort is returned by Vacuum for a retention below the
// table's delta.deletedFileRetentionDuration without AllowShortRetention.
var ErrRetentionTooShort = errors.New("vacuum retention is shorter than the table's delta.deletedFileRetentionDuration")

// VacuumCandidates lists the files under the table that the latest snapshot
// does not reference, that no tombstone younger than the retention
// references, and that are older than the retention. It ignores _delta_log
// and every path whose first component starts with "_" or "." (the
// descriptor archive, Hive-style hidden files). It deletes nothing.
func (t *Table) VacuumCandidates(ctx context.Context, opts VacuumOptions) ([]VacuumCandidate, error) {
	s, err := t.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("vacuum: %w", err)
	}
	tableMin := durationProp(s.Metadata().Configuration, PropDeletedFileRetentionDuration, DefaultDeletedFileRetention)
	retention := opts.Retention
	if retention == 0 && !opts.RetainNothing {
		retention = tableMin
	}
	if opts.RetainNothing {
		retention = 0
	}
	if retention < 0 {
		return nil, fmt.Errorf("vacuum: negative retention %v", retention)
	}
	if retention < tableMin && !opts.AllowShortRetention {
		return nil, fmt.Errorf("vacuum: retention %v < %v: %w (pass the override to force it)", retention, tableMin, ErrRetentionTooShort)
	}
	now := t.cfg.Now()
	cutoff := now.Add(-retention)
	keep := map[string]bool{}
	s.files.each(func(k string, _ *Add) { keep[k] = true })
	s.tombstones.each(func(k string, r *Remove) {
		if r.DeletionTimestamp == nil || time.UnixMilli(*r.DeletionTimestamp).After(cutoff) {
			keep[k] = true
		}
	})
	objs, err := t.store.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("vacuum: list: %w", err)
	}
	var out []VacuumCandidate
	for _, o := range objs {
		first, _, _ := strings.Cut(o.Key, "/")
		if strings.HasPrefix(first, "_") || strings.HasPrefix(first, ".") {
			continue
		}
		if keep[o.Key] || o.ModTime.After(cutoff) {
			continue
		}
		out = append(out, VacuumCandidate{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
	}
	return out, nil
}

// DeleteFiles deletes the candidates (as returned by VacuumCandidates) and
// returns how many were deleted before any error.
func (t *Table) DeleteFiles(ctx context.Context, files []VacuumCandidate) (int, error) {
	for i, f := range files {
		if err := t.store.Delete(ctx, f.Key); err != nil {
			return i, fmt.Errorf("vacuum: delete %s: %w", f.Key, err)
		}
	}
	return len(files), nil
}
