package commitlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	// DryRun makes Vacuum list the candidates and commit and delete
	// nothing.
	DryRun bool
}

// Operations of the commits Vacuum records, as Spark writes them.
const (
	OpVacuumStart = "VACUUM START"
	OpVacuumEnd   = "VACUUM END"
)

// VacuumResult is what Vacuum found and did.
type VacuumResult struct {
	// Version is the snapshot the candidates were computed against.
	Version int64
	// Retention is the retention applied: VacuumOptions.Retention, zero
	// for RetainNothing, else the table's delta.deletedFileRetentionDuration.
	Retention time.Duration
	// Files are the candidates, Bytes their total size.
	Files []VacuumCandidate
	Bytes int64
	// Deleted is how many of Files were deleted (0 for a dry run).
	Deleted int
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
	cands, _, err := t.vacuumCandidates(ctx, s, opts)
	return cands, err
}

// DeletedFileRetention is the table's delta.deletedFileRetentionDuration
// (DefaultDeletedFileRetention when unset or unparsable): the shortest
// retention Vacuum accepts without AllowShortRetention.
func (s *Snapshot) DeletedFileRetention() time.Duration {
	return durationProp(s.Metadata().Configuration, PropDeletedFileRetentionDuration, DefaultDeletedFileRetention)
}

// vacuumCandidates lists the candidates in s and returns the retention
// applied.
func (t *Table) vacuumCandidates(ctx context.Context, s *Snapshot, opts VacuumOptions) ([]VacuumCandidate, time.Duration, error) {
	tableMin := s.DeletedFileRetention()
	retention := opts.Retention
	if retention == 0 && !opts.RetainNothing {
		retention = tableMin
	}
	if opts.RetainNothing {
		retention = 0
	}
	if retention < 0 {
		return nil, 0, fmt.Errorf("vacuum: negative retention %v", retention)
	}
	if retention < tableMin && !opts.AllowShortRetention {
		return nil, 0, fmt.Errorf("vacuum: retention %v < %v: %w (pass the override to force it)", retention, tableMin, ErrRetentionTooShort)
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
		return nil, 0, fmt.Errorf("vacuum: list: %w", err)
	}
	var out []VacuumCandidate
	for _, o := range objs {
		if protectedKey(o.Key) || keep[o.Key] || o.ModTime.After(cutoff) {
			continue
		}
		out = append(out, VacuumCandidate{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
	}
	return out, retention, nil
}

// protectedKey reports whether vacuum must never delete key: _delta_log,
// the descriptor archive and any other path whose first component starts
// with "_" or "." (Hive-style hidden files).
func protectedKey(key string) bool {
	first, _, _ := strings.Cut(key, "/")
	return strings.HasPrefix(first, "_") || strings.HasPrefix(first, ".")
}

// ErrProtectedFile is returned by DeleteFiles for a key under _delta_log
// or another "_" or "." directory, which vacuum never deletes.
var ErrProtectedFile = errors.New("vacuum never deletes files under a \"_\" or \".\" directory")

// DeleteFiles deletes the candidates (as returned by VacuumCandidates) and
// returns how many were deleted before any error. It refuses, before
// deleting anything, a list holding a protected key (ErrProtectedFile),
// whatever produced the list.
func (t *Table) DeleteFiles(ctx context.Context, files []VacuumCandidate) (int, error) {
	for _, f := range files {
		if protectedKey(f.Key) {
			return 0, fmt.Errorf("vacuum: delete %s: %w", f.Key, ErrProtectedFile)
		}
	}
	for i, f := range files {
		if err := t.store.Delete(ctx, f.Key); err != nil {
			return i, fmt.Errorf("vacuum: delete %s: %w", f.Key, err)
		}
	}
	return len(files), nil
}

// Vacuum deletes the files VacuumCandidates lists for the latest snapshot
// and records the deletion as Spark does: a VACUUM START commit (the
// retention and what is to be deleted), the deletions, then a VACUUM END
// commit (COMPLETED or FAILED, and how many were deleted) written even when
// ctx was cancelled during the deletions. With opts.DryRun it only lists.
//
// The result is returned with the error too, so a caller can say how many
// files went before a failure.
func (t *Table) Vacuum(ctx context.Context, opts VacuumOptions) (*VacuumResult, error) {
	s, err := t.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("vacuum: %w", err)
	}
	cands, retention, err := t.vacuumCandidates(ctx, s, opts)
	if err != nil {
		return nil, err
	}
	res := &VacuumResult{Version: s.Version(), Retention: retention, Files: cands}
	for _, c := range cands {
		res.Bytes += c.Size
	}
	if opts.DryRun {
		return res, nil
	}
	s, err = t.commitInfoOnly(ctx, s, OpVacuumStart, map[string]any{
		"retentionCheckEnabled":    strconv.FormatBool(!opts.AllowShortRetention),
		"specifiedRetentionMillis": strconv.FormatInt(retention.Milliseconds(), 10),
		"defaultRetentionMillis":   strconv.FormatInt(DefaultDeletedFileRetention.Milliseconds(), 10),
	}, map[string]string{
		"numFilesToDelete":   strconv.Itoa(len(cands)),
		"sizeOfDataToDelete": strconv.FormatInt(res.Bytes, 10),
	})
	if err != nil {
		return res, fmt.Errorf("vacuum: record %s: %w", OpVacuumStart, err)
	}
	n, delErr := t.DeleteFiles(ctx, cands)
	res.Deleted = n
	status := "COMPLETED"
	if delErr != nil {
		status = "FAILED"
	}
	_, endErr := t.commitInfoOnly(context.WithoutCancel(ctx), s, OpVacuumEnd, map[string]any{"status": status}, map[string]string{
		"numDeletedFiles":        strconv.Itoa(n),
		"numVacuumedDirectories": "0",
	})
	if delErr != nil {
		return res, fmt.Errorf("vacuum: deleted %d of %d files: %w", n, len(cands), delErr)
	}
	if endErr != nil {
		return res, fmt.Errorf("vacuum: deleted %d files but could not record %s: %w", n, OpVacuumEnd, endErr)
	}
	return res, nil
}

// commitInfoOnly commits a version holding only commitInfo on top of base,
// brought up to date with Update (the commits after base, not the whole
// log), and returns the snapshot after it.
func (t *Table) commitInfoOnly(ctx context.Context, base *Snapshot, op string, params map[string]any, metrics map[string]string) (*Snapshot, error) {
	s, err := t.Update(ctx, base)
	if err != nil {
		return nil, err
	}
	tx := t.NewTransaction(s)
	tx.SetOperation(op, params)
	tx.SetMetrics(metrics)
	res, err := tx.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if res.Snapshot != nil {
		return res.Snapshot, nil
	}
	return s, nil
}
