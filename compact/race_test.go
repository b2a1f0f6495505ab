package compact_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/faulty"
)

// racedTable returns a table of 4 partitions × 10 small files and a second
// handle on it whose store runs `interfere` once, just before its first
// commit attempt (after the compaction planned and wrote its files).
func racedTable(t *testing.T, interfere func()) (*testTable, *commitlog.Table) {
	t.Helper()
	tt, fs, a := faultyTable(t, 10, 20, 4, commitlog.Config{DisableCheckpoints: true})
	var once sync.Once
	fs.OnBefore(func(ctx context.Context, c faulty.Call) error {
		if c.Op == faulty.OpPutIfAbsent && strings.HasPrefix(c.Key, commitlog.LogDir) {
			once.Do(interfere)
		}
		return nil
	})
	return tt, a
}

// checkNoOrphans: every file on disk outside _delta_log/ and _protolake/ is
// active or tombstoned, i.e. a compaction that did not commit deleted what
// it wrote, temporary files included.
func checkNoOrphans(t *testing.T, tt *testTable) {
	t.Helper()
	snap, err := tt.tbl.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range snap.Files() {
		known[f.Path] = true
	}
	for _, r := range snap.Tombstones() {
		known[r.Path] = true
	}
	err = filepath.WalkDir(tt.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tt.dir, p)
		rel = filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, "_delta_log/") && !strings.HasPrefix(rel, "_protolake/") && !known[rel] {
			t.Errorf("left behind: %s (written by a compaction that did not commit and not deleted)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRacingCompactionsRetry: compaction B compacts the same partitions
// (and new small files arrive) between compaction A's plan and its commit.
// A's commits conflict; A plans again on the fresh files and succeeds. No
// row is lost or doubled.
func TestRacingCompactionsRetry(t *testing.T) {
	ctx := context.Background()
	var tt *testTable
	var bRes *compact.Result
	tt, a := racedTable(t, func() {
		var err error
		if bRes, err = compact.Run(ctx, tt.tbl, compact.Config{Logger: testLogger(t)}); err != nil {
			t.Error(err)
		}
		for b := 0; b < 5; b++ {
			tt.appendBatch(t, 20, 4)
		}
	})
	db := ducktest.Open(t)
	res, err := compact.Run(ctx, a, compact.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if bRes == nil || bRes.Err() != nil || len(bRes.Partitions) != 4 {
		t.Fatalf("interfering compaction: %+v", bRes)
	}
	for _, p := range res.Partitions {
		if p.Attempts != 2 || p.Version < 0 || p.RemovedFiles != 6 {
			t.Errorf("partition %s: %d attempts, version %d, %d files removed; want 2 attempts, a commit of B's file + 5 new ones", p.Path, p.Attempts, p.Version, p.RemovedFiles)
		}
	}
	snap, _ := tt.tbl.Snapshot(ctx)
	if snap.NumFiles() != 4 {
		t.Errorf("%d files at the end, want 4", snap.NumFiles())
	}
	rows := tableRows(t, db, tt.dir, snap)
	if len(rows) != 15*20 {
		t.Errorf("%d rows, want %d", len(rows), 15*20)
	}
	// Every row once: the impression ids are unique.
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r] {
			t.Fatalf("duplicate row %s", r)
		}
		seen[r] = true
	}
	checkNoOrphans(t, tt)
}

// TestRacingCompactionsGiveUp: with one attempt, the loser reports each
// partition as failed with ErrConflict, deletes its files, and the table
// holds exactly the winner's result.
func TestRacingCompactionsGiveUp(t *testing.T) {
	ctx := context.Background()
	var tt *testTable
	tt, a := racedTable(t, func() {
		if _, err := compact.Run(ctx, tt.tbl, compact.Config{}); err != nil {
			t.Error(err)
		}
	})
	db := ducktest.Open(t)
	before, _ := tt.tbl.Snapshot(ctx)
	want := tableRows(t, db, tt.dir, before)
	res, err := compact.Run(ctx, a, compact.Config{MaxAttempts: 1, MaxConcurrent: 4})
	if err != nil {
		t.Fatal(err)
	}
	err = res.Err()
	if !errors.Is(err, compact.ErrPartitionsFailed) || !errors.Is(err, commitlog.ErrConflict) {
		t.Fatalf("Result.Err = %v, want ErrPartitionsFailed wrapping ErrConflict", err)
	}
	var pe *compact.PartitionError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Path, "event_time_day=") {
		t.Errorf("error does not name a partition: %v", err)
	}
	snap, _ := tt.tbl.Snapshot(ctx)
	if snap.NumFiles() != 4 {
		t.Errorf("%d files, want the winner's 4", snap.NumFiles())
	}
	equalMultisets(t, "after the race", tableRows(t, db, tt.dir, snap), want)
	checkNoOrphans(t, tt)
}
