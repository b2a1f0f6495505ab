package commitlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/mem"
)

func age(t *testing.T, dir, key string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(key)), old, old); err != nil {
		t.Fatal(err)
	}
}

// twelveCommits is a local table of versions 0..12 with checkpoints at 5
// and 10 and no automatic log cleanup.
func twelveCommits(t *testing.T) (string, *local.Store, *Table) {
	t.Helper()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(st, Config{DisableLogCleanup: true}) // interval 5 from the spec
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(context.Background(), testSpec()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		commitAdds(t, tbl, "f"+string(rune('a'+i)))
	}
	return dir, st, tbl
}

func TestCleanupLogKeepsRetainedVersionsReconstructable(t *testing.T) {
	ctx := context.Background()
	dir, st, tbl := twelveCommits(t)
	before := map[int64]string{}
	for v := int64(0); v <= 12; v++ {
		before[v] = snapshotFacts(t, mustSnapshotAt(t, tbl, v))
	}
	// Versions 0..7 are 40 days old, 8..12 fresh: R = 8, C = 5.
	for v := int64(0); v <= 7; v++ {
		age(t, dir, CommitKey(v), 40*24*time.Hour)
	}
	age(t, dir, CheckpointKey(5), 40*24*time.Hour)
	deleted, err := tbl.CleanupLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for v := int64(0); v < 5; v++ {
		want = append(want, CommitKey(v))
	}
	if !reflect.DeepEqual(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	for v := int64(5); v <= 12; v++ {
		if got := snapshotFacts(t, mustSnapshotAt(t, tbl, v)); got != before[v] {
			t.Errorf("version %d changed after cleanup", v)
		}
	}
	if _, err := tbl.SnapshotAt(ctx, 4); !errors.Is(err, ErrVersionNotFound) {
		t.Errorf("version 4 after cleanup: %v, want ErrVersionNotFound", err)
	}

	// Everything old: cleanup goes up to the newest checkpoint (10).
	for v := int64(5); v <= 12; v++ {
		age(t, dir, CommitKey(v), 40*24*time.Hour)
	}
	age(t, dir, CheckpointKey(10), 40*24*time.Hour)
	if _, err := tbl.CleanupLog(ctx); err != nil {
		t.Fatal(err)
	}
	objs, _ := st.List(ctx, LogDir)
	var left []string
	for _, o := range objs {
		left = append(left, o.Key)
	}
	wantLeft := []string{CommitKey(10), CheckpointKey(10), CommitKey(11), CommitKey(12), lastCheckpointKey}
	sort.Strings(wantLeft)
	if !reflect.DeepEqual(left, wantLeft) {
		t.Errorf("log after full cleanup = %v, want %v", left, wantLeft)
	}
	if got := snapshotFacts(t, mustSnapshot(t, tbl)); got != before[12] {
		t.Error("latest changed after cleanup")
	}
}

func TestCleanupWithoutCheckpointDeletesNothing(t *testing.T) {
	ctx := context.Background()
	tbl, _ := newTestTable(t, Config{DisableCheckpoints: true, Now: func() time.Time { return time.Now().Add(365 * 24 * time.Hour) }})
	for i := 0; i < 7; i++ {
		commitAdds(t, tbl, "f"+string(rune('a'+i)))
	}
	deleted, err := tbl.CleanupLog(ctx)
	if err != nil || len(deleted) != 0 {
		t.Errorf("CleanupLog = %v, %v; want nothing deleted without a checkpoint", deleted, err)
	}
}

func TestVacuumCandidates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	put := func(key string) {
		if err := st.Put(ctx, key, bytes.NewReader([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		put("day=2026-01-01/" + k)
	}
	put("_protolake/descriptors/old.binpb")
	put(".hidden/file")
	commitAdds(t, tbl, "a", "b", "c")
	s := mustSnapshot(t, tbl)
	tx := tbl.NewTransaction(s)
	oldDeletion := time.Now().Add(-10 * 24 * time.Hour).UnixMilli()
	tx.Remove(Remove{Path: "day=2026-01-01/b", DataChange: true})                                  // fresh tombstone
	tx.Remove(Remove{Path: "day=2026-01-01/c", DataChange: true, DeletionTimestamp: &oldDeletion}) // expired tombstone
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"day=2026-01-01/a", "day=2026-01-01/b", "day=2026-01-01/c", "day=2026-01-01/d", "_protolake/descriptors/old.binpb", ".hidden/file"} {
		age(t, dir, k, 10*24*time.Hour)
	}
	got, err := tbl.VacuumCandidates(ctx, VacuumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range got {
		keys = append(keys, c.Key)
	}
	if want := []string{"day=2026-01-01/c", "day=2026-01-01/d"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("candidates = %v, want %v", keys, want)
	}
	if _, err := tbl.VacuumCandidates(ctx, VacuumOptions{Retention: time.Hour}); !errors.Is(err, ErrRetentionTooShort) {
		t.Errorf("short retention: %v, want ErrRetentionTooShort", err)
	}
	short, err := tbl.VacuumCandidates(ctx, VacuumOptions{Retention: time.Nanosecond, AllowShortRetention: true})
	if err != nil {
		t.Fatal(err)
	}
	var shortKeys []string
	for _, c := range short {
		shortKeys = append(shortKeys, c.Key)
	}
	// With the override every unreferenced file older than 1ns goes: the
	// freshly removed b and the young orphan e as well.
	if want := []string{"day=2026-01-01/b", "day=2026-01-01/c", "day=2026-01-01/d", "day=2026-01-01/e"}; !reflect.DeepEqual(shortKeys, want) {
		t.Errorf("short-retention candidates = %v, want %v", shortKeys, want)
	}
	n, err := tbl.DeleteFiles(ctx, got)
	if err != nil || n != 2 {
		t.Fatalf("DeleteFiles = %d, %v", n, err)
	}
	for _, k := range keys {
		if _, err := os.Stat(filepath.Join(dir, k)); !os.IsNotExist(err) {
			t.Errorf("%s still exists", k)
		}
	}
	if s := mustSnapshot(t, tbl); s.NumFiles() != 1 || !s.HasFile("day=2026-01-01/a") {
		t.Errorf("snapshot after vacuum: %d files", s.NumFiles())
	}
}

// TestVacuumClock runs Vacuum on an injected clock: a tombstone older than
// the retention and an old orphan go, a younger tombstone and an orphan
// younger than the retention stay, and VACUUM START / END record it.
func TestVacuumClock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	tbl, err := Open(st, Config{Now: func() time.Time { return clock }, DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	setTime := func(key string, at time.Time) {
		t.Helper()
		if err := st.Put(ctx, key, bytes.NewReader([]byte("xy"))); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(key)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c"} {
		setTime("day=2026-01-01/"+k, clock.Add(-24*time.Hour))
	}
	setTime("_protolake/descriptors/old.binpb", clock.Add(-24*time.Hour))
	setTime(".hidden/file", clock.Add(-24*time.Hour))
	setTime("orphan-old", clock.Add(-24*time.Hour))
	commitAdds(t, tbl, "a", "b", "c")
	remove := func(name string) {
		tx := tbl.NewTransaction(mustSnapshot(t, tbl))
		tx.Remove(Remove{Path: "day=2026-01-01/" + name, DataChange: true})
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	remove("b") // tombstone at clock
	clock = clock.Add(2 * time.Hour)
	remove("c") // tombstone 2h later
	setTime("orphan-young", clock.Add(-30*time.Minute))

	opts := VacuumOptions{Retention: time.Hour, AllowShortRetention: true, DryRun: true}
	dry, err := tbl.Vacuum(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range dry.Files {
		keys = append(keys, f.Key)
	}
	if want := []string{"day=2026-01-01/b", "orphan-old"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("candidates at +2h with 1h retention = %v, want %v", keys, want)
	}
	before := mustSnapshot(t, tbl).Version()
	if dry.Version != before || dry.Retention != time.Hour || dry.Bytes != 4 || dry.Deleted != 0 {
		t.Errorf("dry run = %+v", dry)
	}
	if _, err := os.Stat(filepath.Join(dir, "orphan-old")); err != nil {
		t.Errorf("dry run deleted: %v", err)
	}

	opts.DryRun = false
	res, err := tbl.Vacuum(ctx, opts)
	if err != nil || res.Deleted != 2 {
		t.Fatalf("Vacuum = %+v, %v", res, err)
	}
	for _, k := range keys {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(k))); !os.IsNotExist(err) {
			t.Errorf("%s not deleted (%v)", k, err)
		}
	}
	for _, k := range []string{"day=2026-01-01/a", "day=2026-01-01/c", "orphan-young", "_protolake/descriptors/old.binpb", ".hidden/file"} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(k))); err != nil {
			t.Errorf("%s deleted: %v", k, err)
		}
	}
	hist, err := tbl.History(ctx, Latest)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range hist {
		if e.Version > before {
			ops = append(ops, e.CommitInfo.Operation+" "+e.CommitInfo.OperationMetrics["numFilesToDelete"]+e.CommitInfo.OperationMetrics["numDeletedFiles"])
		}
	}
	sort.Strings(ops)
	if want := []string{"VACUUM END 2", "VACUUM START 2"}; !reflect.DeepEqual(ops, want) {
		t.Errorf("commits after vacuum = %q, want %q", ops, want)
	}

	// Whatever list it is given, DeleteFiles never deletes the log.
	if _, err := tbl.DeleteFiles(ctx, []VacuumCandidate{{Key: "_delta_log/00000000000000000000.json"}}); !errors.Is(err, ErrProtectedFile) {
		t.Errorf("DeleteFiles(_delta_log/…) = %v, want ErrProtectedFile", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_delta_log", "00000000000000000000.json")); err != nil {
		t.Errorf("log deleted: %v", err)
	}
}

// TestHasCheckpoint: on a store with Stat (mem) HasCheckpoint stats the
// key and never opens the checkpoint; on one without (listOnly) it opens it.
func TestHasCheckpoint(t *testing.T) {
	ctx := context.Background()
	for name, wrap := range map[string]func(storage.Store) storage.Store{
		"stat": func(s storage.Store) storage.Store { return s },
		"get":  func(s storage.Store) storage.Store { return listOnly{s} },
	} {
		fs := faulty.New(mem.New())
		tbl, err := Open(wrap(fs), Config{DisableCheckpoints: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tbl.Create(ctx, testSpec()); err != nil {
			t.Fatal(err)
		}
		if ok, err := tbl.HasCheckpoint(ctx, 0); ok || err != nil {
			t.Fatalf("%s: before: %v, %v", name, ok, err)
		}
		if _, err := tbl.Checkpoint(ctx, 0); err != nil {
			t.Fatal(err)
		}
		gets, stats := fs.Calls(faulty.OpGet), fs.Calls(faulty.OpStat)
		if ok, err := tbl.HasCheckpoint(ctx, 0); !ok || err != nil {
			t.Fatalf("%s: after: %v, %v", name, ok, err)
		}
		gets, stats = fs.Calls(faulty.OpGet)-gets, fs.Calls(faulty.OpStat)-stats
		if want := map[string][2]int{"stat": {0, 1}, "get": {1, 0}}[name]; [2]int{gets, stats} != want {
			t.Errorf("%s: HasCheckpoint made %d Gets and %d Stats, want %d and %d", name, gets, stats, want[0], want[1])
		}
	}
}

// TestVacuumLoadsTheLogOnce: Vacuum lists the log for its snapshot and the
// table for its candidates, and records VACUUM START and END without loading
// the log again.
func TestVacuumLoadsTheLogOnce(t *testing.T) {
	ctx := context.Background()
	tbl, fs, _ := matrixTable(t)
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	commitAdds(t, tbl, "a")
	before := fs.Calls(faulty.OpList)
	if _, err := tbl.Vacuum(ctx, VacuumOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := fs.Calls(faulty.OpList) - before; got != 2 {
		t.Errorf("Vacuum listed %d times, want 2 (the log once, the table once)", got)
	}
	hist, err := tbl.History(ctx, Latest)
	if err != nil {
		t.Fatal(err)
	}
	if got := hist[len(hist)-1].CommitInfo.Operation; got != OpVacuumEnd {
		t.Errorf("latest commit %q, want %q", got, OpVacuumEnd)
	}
}
