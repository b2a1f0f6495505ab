package commitlog

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/mem"
)

// crashTable is a table on a fault-injecting store over memory, with one
// commit (file "a") already made.
func crashTable(t *testing.T) (*Table, *faulty.Store, *mem.Store) {
	t.Helper()
	inner := mem.New()
	fs := faulty.New(inner)
	tbl, err := Open(fs, Config{RetryBackoff: 1_000_000, DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(context.Background(), testSpec()); err != nil {
		t.Fatal(err)
	}
	commitAdds(t, tbl, "a")
	return tbl, fs, inner
}

// uploadAndCommit is what the writer does: upload the data file, then
// commit it with its offsets.
func uploadAndCommit(ctx context.Context, tbl *Table, snap *Snapshot, name string, first, last int64) (CommitResult, error) {
	add := testAdd(name)
	if err := tbl.Store().Put(ctx, add.Path, bytes.NewReader([]byte("parquet bytes"))); err != nil {
		return CommitResult{}, err
	}
	tx := tbl.NewTransaction(snap)
	tx.Add(add)
	tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: 0, First: first, Last: last})
	return tx.Commit(ctx)
}

func isCommitKey(c faulty.Call) bool { return strings.HasSuffix(c.Key, ".json") }

func TestCrashBetweenUploadAndCommit(t *testing.T) {
	ctx := context.Background()
	tbl, fs, inner := crashTable(t)
	// The commit write fails outright (nothing written), as when the
	// process dies after uploading the data file.
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Nth: 1})
	if _, err := uploadAndCommit(ctx, tbl, mustSnapshot(t, tbl), "b", 0, 9); err == nil {
		t.Fatal("commit succeeded despite the injected failure")
	}
	s := mustSnapshot(t, tbl)
	if s.Version() != 1 || s.HasFile("day=2026-01-01/b") {
		t.Fatalf("after the failed commit: version %d, has b = %v; want 1, false", s.Version(), s.HasFile("day=2026-01-01/b"))
	}
	if _, ok := s.TxnVersion(KafkaAppID("g", "t", 0)); ok {
		t.Fatal("watermark moved without a commit")
	}
	// The restarted writer seeks to the watermark (none) and redoes the
	// batch; the data file is re-uploaded under the same name.
	res, err := uploadAndCommit(ctx, tbl, s, "b", 0, 9)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 {
		t.Errorf("retry landed at %d, want 2", res.Version)
	}
	auditLog(t, inner)
	s = mustSnapshot(t, tbl)
	if s.NumFiles() != 2 {
		t.Errorf("files = %d, want 2", s.NumFiles())
	}
	if v, _ := s.TxnVersion(KafkaAppID("g", "t", 0)); v != 9 {
		t.Errorf("watermark = %d, want 9", v)
	}
}

func TestAmbiguousCommitLanded(t *testing.T) {
	ctx := context.Background()
	tbl, fs, inner := crashTable(t)
	// The commit lands but the response is lost.
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Nth: 1, After: true, Match: isCommitKey})
	res, err := uploadAndCommit(ctx, tbl, mustSnapshot(t, tbl), "b", 0, 9)
	if err != nil {
		t.Fatalf("ambiguous commit not resolved: %v", err)
	}
	if res.Version != 2 || !res.AlreadyCommitted {
		t.Errorf("result = %+v, want version 2 found by txnId", res)
	}
	a := auditLog(t, inner)
	if a.latest != 2 {
		t.Errorf("latest = %d, want 2 (no duplicate commit)", a.latest)
	}
	// A writer retrying the same offsets from the new snapshot is refused.
	if _, err := uploadAndCommit(ctx, tbl, mustSnapshot(t, tbl), "b2", 0, 9); !errors.Is(err, ErrFenced) {
		t.Errorf("re-commit of committed offsets: %v, want ErrFenced", err)
	}
}

func TestAmbiguousCommitLandedReadBackFails(t *testing.T) {
	ctx := context.Background()
	tbl, fs, inner := crashTable(t)
	snap := mustSnapshot(t, tbl)
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Nth: 1, After: true, Match: isCommitKey})
	fs.Inject(faulty.Fault{Op: faulty.OpGet, Nth: 1, Match: isCommitKey}) // the read-back fails too
	res, err := uploadAndCommit(ctx, tbl, snap, "b", 0, 9)
	if err != nil {
		t.Fatalf("ambiguous commit not resolved: %v", err)
	}
	if res.Version != 2 || !res.AlreadyCommitted {
		t.Errorf("result = %+v, want version 2 found by txnId", res)
	}
	if a := auditLog(t, inner); a.latest != 2 {
		t.Errorf("latest = %d, want 2", a.latest)
	}
}

func TestAmbiguousCommitNotLanded(t *testing.T) {
	ctx := context.Background()
	tbl, fs, inner := crashTable(t)
	// An ambiguous error although nothing was written (a timeout before
	// the request reached the server).
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Nth: 1, Match: isCommitKey, Err: storage.ErrAmbiguous})
	res, err := uploadAndCommit(ctx, tbl, mustSnapshot(t, tbl), "b", 0, 9)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || res.AlreadyCommitted || res.Attempts != 2 {
		t.Errorf("result = %+v, want version 2 written by the second attempt", res)
	}
	if a := auditLog(t, inner); a.latest != 2 {
		t.Errorf("latest = %d, want 2", a.latest)
	}
}

func TestAmbiguousCommitLostToAnotherWriter(t *testing.T) {
	ctx := context.Background()
	tbl, fs, inner := crashTable(t)
	other, err := Open(inner, Config{DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	snap := mustSnapshot(t, tbl)
	// Just before our commit write, another writer takes version 2; our
	// write is refused but the refusal is reported as ambiguous.
	fired := false
	fs.OnBefore(func(ctx context.Context, c faulty.Call) error {
		if c.Op == faulty.OpPutIfAbsent && isCommitKey(c) && !fired {
			fired = true
			tx := other.NewTransaction(snap)
			tx.Add(testAdd("other"))
			if _, err := tx.Commit(ctx); err != nil {
				t.Errorf("other writer: %v", err)
			}
		}
		return nil
	})
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Nth: 1, After: true, Match: isCommitKey})
	res, err := uploadAndCommit(ctx, tbl, snap, "b", 0, 9)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 3 || res.AlreadyCommitted {
		t.Errorf("result = %+v, want version 3 after the other writer's 2", res)
	}
	if a := auditLog(t, inner); a.latest != 3 || len(a.adds) != 3 {
		t.Errorf("latest = %d with %d files, want 3 with 3", a.latest, len(a.adds))
	}
}

func TestCommitUnresolvable(t *testing.T) {
	ctx := context.Background()
	tbl, fs, _ := crashTable(t)
	tbl.cfg.MaxAttempts = 3
	snap := mustSnapshot(t, tbl)
	// Every commit write is ambiguous and every read-back fails.
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, After: true, Match: isCommitKey})
	fs.Inject(faulty.Fault{Op: faulty.OpGet, Match: isCommitKey})
	tx := tbl.NewTransaction(snap)
	tx.Add(testAdd("b"))
	_, err := tx.Commit(ctx)
	var amb *AmbiguousCommitError
	if !errors.As(err, &amb) || amb.TxnID != tx.TxnID() {
		t.Fatalf("error = %v, want *AmbiguousCommitError for %s", err, tx.TxnID())
	}
	// Later, with the store healthy, the caller resolves it.
	fs.Reset()
	v, err := tbl.FindCommit(ctx, tx.TxnID(), snap.Version()+1)
	if err != nil || v != 2 {
		t.Errorf("FindCommit = %d, %v; want 2", v, err)
	}
}

// TestLastCheckpointNarrowsListing: the latest snapshot lists only from the
// checkpoint _last_checkpoint names; a corrupt or wrong hint falls back to
// the full listing with the same result.
func TestLastCheckpointNarrowsListing(t *testing.T) {
	ctx := context.Background()
	inner := mem.New()
	fs := faulty.New(inner)
	tbl, err := Open(fs, Config{CheckpointInterval: 50})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 105; i++ {
		commitAdds(t, tbl, "f"+strconv.Itoa(i))
	}
	full := replayFacts(t, inner)
	var prefixes []string
	fs.OnBefore(func(_ context.Context, c faulty.Call) error {
		if c.Op == faulty.OpList {
			prefixes = append(prefixes, c.Key)
		}
		return nil
	})
	for _, tc := range []struct {
		name     string
		hint     string
		wantFull bool
	}{
		{"valid hint", "", false},
		{"corrupt hint", "{not json", true},
		{"hint at a missing checkpoint", `{"version":70,"size":3}`, true},
		{"hint beyond the log", `{"version":5000,"size":3}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.hint != "" {
				if err := inner.Put(ctx, lastCheckpointKey, strings.NewReader(tc.hint)); err != nil {
					t.Fatal(err)
				}
			}
			prefixes = nil
			s := mustSnapshot(t, tbl)
			if got := snapshotFacts(t, s); got != full {
				t.Errorf("snapshot differs from a full replay")
			}
			listedAll := false
			for _, p := range prefixes {
				if p == LogDir {
					listedAll = true
				}
			}
			if listedAll != tc.wantFull {
				t.Errorf("listed %q; full listing = %v, want %v", prefixes, listedAll, tc.wantFull)
			}
		})
	}
}

func replayFacts(t *testing.T, st Reader) string {
	t.Helper()
	s, err := LoadSnapshot(context.Background(), noCheckpointReader{st}, Latest, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return snapshotFacts(t, s)
}

// TestCheckpointFailureKeepsCommit: a failed checkpoint write is reported
// in CommitResult; the commit stands and readers replay the JSON commits.
func TestCheckpointFailureKeepsCommit(t *testing.T) {
	ctx := context.Background()
	inner := mem.New()
	fs := faulty.New(inner)
	tbl, err := Open(fs, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil { // interval 5
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		commitAdds(t, tbl, "f"+strconv.Itoa(i))
	}
	fs.Inject(faulty.Fault{Op: faulty.OpPut, Match: func(c faulty.Call) bool { return strings.Contains(c.Key, ".checkpoint.") }})
	res := commitAdds(t, tbl, "f4")
	if res.Version != 5 || res.Checkpointed || res.CheckpointErr == nil {
		t.Fatalf("result = %+v, want version 5 with a checkpoint error", res)
	}
	fs.Reset()
	s := mustSnapshot(t, tbl)
	if s.Version() != 5 || s.NumFiles() != 5 || s.CheckpointVersion() != -1 {
		t.Errorf("snapshot: version %d, %d files, checkpoint %d; want 5, 5, none", s.Version(), s.NumFiles(), s.CheckpointVersion())
	}
	// The next interval checkpoints normally.
	for i := 5; i < 10; i++ {
		res = commitAdds(t, tbl, "f"+strconv.Itoa(i))
	}
	if !res.Checkpointed || mustSnapshot(t, tbl).CheckpointVersion() != 10 {
		t.Errorf("checkpoint at 10 not written: %+v", res)
	}
}

// TestCleanupInterrupted: log cleanup that fails midway leaves a log from
// which every retained version still loads.
func TestCleanupInterrupted(t *testing.T) {
	ctx := context.Background()
	inner := mem.New()
	fs := faulty.New(inner)
	future := time.Now().Add(60 * 24 * time.Hour)
	tbl, err := Open(fs, Config{DisableLogCleanup: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		commitAdds(t, tbl, "f"+strconv.Itoa(i))
	}
	want := snapshotFacts(t, mustSnapshot(t, tbl))
	later, err := Open(fs, Config{Now: func() time.Time { return future }})
	if err != nil {
		t.Fatal(err)
	}
	fs.FailNth(faulty.OpDelete, 4)
	deleted, err := later.CleanupLog(ctx)
	if err == nil || len(deleted) != 3 {
		t.Fatalf("CleanupLog = %d deleted, %v; want 3 then an error", len(deleted), err)
	}
	for v := int64(10); v <= 12; v++ {
		mustSnapshotAt(t, later, v)
	}
	if got := snapshotFacts(t, mustSnapshot(t, later)); got != want {
		t.Error("latest changed")
	}
	// Finishing the cleanup later works.
	if _, err := later.CleanupLog(ctx); err != nil {
		t.Fatal(err)
	}
	if got := snapshotFacts(t, mustSnapshot(t, later)); got != want {
		t.Error("latest changed after the second cleanup")
	}
}
