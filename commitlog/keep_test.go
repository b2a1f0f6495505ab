package commitlog

import (
	"io"
	"time"

	"context"
	"fmt"
	"github.com/protolake/protolake/storage"
	"testing"

	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/mem"
)

// TestCommitResultSnapshot: the snapshot a commit returns equals a fresh
// load of its version, also when the commit retried past other writers'
// commits, removed files or changed metadata; the snapshot it read is not
// changed.
func TestCommitResultSnapshot(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	a, err := Open(st, Config{DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Open(st, Config{DisableCheckpoints: true})
	if _, err := a.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	commitAdds(t, a, "x", "y")
	kept := mustSnapshot(t, a)
	for i := 0; i < 20; i++ {
		// Another writer commits twice behind a's back every third round.
		if i%3 == 0 {
			commitAdds(t, b, fmt.Sprintf("b%d", i))
			commitAdds(t, b, fmt.Sprintf("b%d-2", i))
		}
		readFacts := snapshotFacts(t, kept)
		tx := a.NewTransaction(kept)
		tx.Add(testAdd(fmt.Sprintf("a%d", i)))
		if i%4 == 1 {
			tx.Remove(kept.Files()[0].ToRemove(true))
		}
		if i%5 == 2 {
			md := kept.Metadata()
			md.Configuration = map[string]string{"round": fmt.Sprint(i)}
			tx.UpdateMetadata(md)
		}
		tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: 0, First: int64(10 * i), Last: int64(10*i + 9)})
		res, err := tx.Commit(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if got := snapshotFacts(t, kept); got != readFacts {
			t.Fatalf("round %d: the read snapshot changed", i)
		}
		if res.Snapshot == nil {
			t.Fatalf("round %d: no snapshot after the commit (attempts %d)", i, res.Attempts)
		}
		fresh := mustSnapshotAt(t, a, res.Version)
		if got, want := snapshotFacts(t, res.Snapshot), snapshotFacts(t, fresh); got != want {
			t.Fatalf("round %d: snapshot after the commit\n%s\nwant\n%s", i, got, want)
		}
		kept = res.Snapshot
	}
}

// TestUpdateReadsOnlyNewCommits: Update lists nothing and reads only the
// commits after the snapshot (and one miss).
func TestUpdateReadsOnlyNewCommits(t *testing.T) {
	ctx := context.Background()
	inner := mem.New()
	fs := faulty.New(inner)
	tbl, err := Open(fs, Config{DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		commitAdds(t, tbl, fmt.Sprint("f", i))
	}
	old := mustSnapshot(t, tbl)
	for i := 0; i < 3; i++ {
		commitAdds(t, tbl, fmt.Sprint("g", i))
	}
	lists, gets := fs.Calls(faulty.OpList), fs.Calls(faulty.OpGet)
	n, err := tbl.Update(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if dl, dg := fs.Calls(faulty.OpList)-lists, fs.Calls(faulty.OpGet)-gets; dl != 0 || dg != 4 {
		t.Errorf("Update made %d LISTs and %d GETs, want 0 and 4 (3 new commits, 1 miss)", dl, dg)
	}
	if got, want := snapshotFacts(t, n), snapshotFacts(t, mustSnapshot(t, tbl)); got != want {
		t.Errorf("Update = \n%s\nwant\n%s", got, want)
	}
	if old.Version() != 50 || old.NumFiles() != 50 {
		t.Errorf("the old snapshot changed: version %d, %d files", old.Version(), old.NumFiles())
	}
	// Far behind (more than updateProbeLimit commits): the same state.
	for i := 0; i < updateProbeLimit+5; i++ {
		commitAdds(t, tbl, fmt.Sprint("h", i))
	}
	n, err = tbl.Update(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snapshotFacts(t, n), snapshotFacts(t, mustSnapshot(t, tbl)); got != want {
		t.Errorf("Update far behind = \n%s\nwant\n%s", got, want)
	}
}

// TestBackgroundCheckpointAndHourlyCleanup: with BackgroundCheckpoints the
// checkpoint is written after Commit returns; the automatic log cleanup
// (the only LIST on the commit path) runs at most once per
// LogCleanupInterval.
func TestBackgroundCheckpointAndHourlyCleanup(t *testing.T) {
	ctx := context.Background()
	inner := mem.New()
	fs := faulty.New(inner)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tbl, err := Open(fs, Config{BackgroundCheckpoints: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := tbl.Create(ctx, testSpec()) // checkpoint interval 5
	if err != nil {
		t.Fatal(err)
	}
	var lists []int
	for i := 1; i <= 15; i++ {
		before := fs.Calls(faulty.OpList) + fs.Calls(faulty.OpListPage)
		tx := tbl.NewTransaction(kept)
		tx.Add(testAdd(fmt.Sprint("f", i)))
		res, err := tx.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.CheckpointStarted != (i%5 == 0) || res.Checkpointed {
			t.Fatalf("version %d: started %v, checkpointed %v", i, res.CheckpointStarted, res.Checkpointed)
		}
		tbl.WaitCheckpoints()
		if i%5 == 0 {
			lists = append(lists, fs.Calls(faulty.OpList)+fs.Calls(faulty.OpListPage)-before)
			s, err := LoadSnapshot(ctx, noCheckpointHint{inner}, Latest, LoadOptions{})
			if err != nil || s.CheckpointVersion() != int64(i) {
				t.Fatalf("after version %d: loaded from checkpoint %d (%v), want %d", i, s.CheckpointVersion(), err, i)
			}
		}
		if i == 10 {
			now = now.Add(time.Hour)
		}
		kept = res.Snapshot
	}
	// Cleanup lists the log at 5, not at 10 (same hour), again at 15.
	if want := []int{1, 0, 1}; fmt.Sprint(lists) != fmt.Sprint(want) {
		t.Errorf("LISTs at checkpoints 5, 10, 15 = %v, want %v", lists, want)
	}
}

// noCheckpointHint hides _last_checkpoint, so a load lists the log.
type noCheckpointHint struct{ Reader }

func (r noCheckpointHint) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if key == lastCheckpointKey {
		return nil, storage.ErrNotExist
	}
	return r.Reader.Get(ctx, key)
}

// TestConcurrentCommitsFromOneSnapshot: many goroutines commit from the
// same published snapshot at once (compaction's partitions do); run with
// -race, building each commit's snapshot must not write the shared one.
func TestConcurrentCommitsFromOneSnapshot(t *testing.T) {
	ctx := context.Background()
	tbl, _ := newTestTable(t, Config{DisableCheckpoints: true})
	commitAdds(t, tbl, "a", "b")
	snap := mustSnapshot(t, tbl)
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			tx := tbl.NewTransaction(snap)
			tx.Add(testAdd(fmt.Sprint("c", i)))
			_, err := tx.Commit(ctx)
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if n := mustSnapshot(t, tbl).NumFiles(); n != 10 {
		t.Errorf("%d files, want 10", n)
	}
}
