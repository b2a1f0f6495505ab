package compact_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/local"
)

// faultyTable returns a table of batches appended batches (rows rows over
// parts partitions each) and a second handle on it, opened with cfg,
// through a fault-injecting store.
func faultyTable(t *testing.T, batches, rows, parts int, cfg commitlog.Config) (*testTable, *faulty.Store, *commitlog.Table) {
	t.Helper()
	tt := newTestTable(t)
	for range batches {
		tt.appendBatch(t, rows, parts)
	}
	inner, err := local.New(tt.dir)
	if err != nil {
		t.Fatal(err)
	}
	fs := faulty.New(inner)
	tbl, err := commitlog.Open(fs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tt, fs, tbl
}

// fourPartitions is the table of the fault tests: 6 batches of 20 rows
// over 4 partitions.
func fourPartitions(t *testing.T) (*testTable, *faulty.Store, *commitlog.Table) {
	t.Helper()
	return faultyTable(t, 6, 20, 4, commitlog.Config{DisableCheckpoints: true})
}

// TestFaultUploadFails: the upload of one compacted file fails; that
// partition reports the error and commits nothing, the others commit, and
// no file is left behind.
func TestFaultUploadFails(t *testing.T) {
	ctx := context.Background()
	tt, fs, tbl := fourPartitions(t)
	db := ducktest.Open(t)
	before, _ := tt.tbl.Snapshot(ctx)
	want := tableRows(t, db, tt.dir, before)
	fs.Inject(faulty.Fault{Op: faulty.OpPut, Nth: 2, Match: func(c faulty.Call) bool { return strings.HasSuffix(c.Key, ".zstd.parquet") }})
	res, err := compact.Run(ctx, tbl, compact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("Result.Err = %v, want the injected upload failure", err)
	}
	failed := 0
	for _, p := range res.Partitions {
		if p.Err != nil {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d partitions failed, want 1", failed)
	}
	after, _ := tt.tbl.Snapshot(ctx)
	if after.NumFiles() != 3+6 {
		t.Errorf("%d files, want 3 compacted partitions + 6 files of the failed one", after.NumFiles())
	}
	equalMultisets(t, "after", tableRows(t, db, tt.dir, after), want)
	checkNoOrphans(t, tt)
}

// TestFaultAmbiguousCommit: the log write of a compaction commit lands but
// reports an ambiguous failure; commitlog finds the commit by its txnId, so
// the partition is compacted exactly once and its files are kept.
func TestFaultAmbiguousCommit(t *testing.T) {
	ctx := context.Background()
	tt, fs, tbl := fourPartitions(t)
	db := ducktest.Open(t)
	before, _ := tt.tbl.Snapshot(ctx)
	want := tableRows(t, db, tt.dir, before)
	fs.Inject(faulty.Fault{Op: faulty.OpPutIfAbsent, Nth: 1, After: true})
	res, err := compact.Run(ctx, tbl, compact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	after, _ := tt.tbl.Snapshot(ctx)
	if after.NumFiles() != 4 || after.Version() != before.Version()+4 {
		t.Errorf("after: %d files at version %d, want 4 files at version %d", after.NumFiles(), after.Version(), before.Version()+4)
	}
	equalMultisets(t, "after", tableRows(t, db, tt.dir, after), want)
}

// TestFaultLandedCommitNeverDeleted: a compaction commit lands but the
// store reports the write as ambiguous, and the reads that would find it by
// its txnId fail. The compaction must not delete its new files (they are
// what the committed OPTIMIZE references): every file the table references
// exists and every row is still there. Beyond that scenario, every
// combination of outcomes (pass, fail before the store, fail after the
// store acted) of the first three log writes and reads is run.
func TestFaultLandedCommitNeverDeleted(t *testing.T) {
	outcomes := []string{"pass", "plain", "after"}
	scripts := [][]string{{"after", "plain", "pass", "plain"}} // the case first
	for _, a := range outcomes {
		for _, b := range outcomes {
			for _, c := range outcomes {
				scripts = append(scripts, []string{a, b, c})
			}
		}
	}
	ctx := context.Background()
	db := ducktest.Open(t)
	for _, script := range scripts {
		tt, fs, tbl := faultyTable(t, 2, 10, 2, commitlog.Config{DisableCheckpoints: true, MaxAttempts: 3, RetryBackoff: time.Microsecond})
		before, _ := tt.tbl.Snapshot(ctx)
		want := tableRows(t, db, tt.dir, before)
		// Count log calls from the first commit write on (the planning
		// snapshot reads the log too). Match runs under the store's lock.
		armed := false
		for i, o := range script {
			f := faulty.Fault{Nth: i + 1, Match: func(c faulty.Call) bool {
				if !strings.HasPrefix(c.Key, commitlog.LogDir) || !strings.HasSuffix(c.Key, ".json") {
					return false
				}
				armed = armed || c.Op == faulty.OpPutIfAbsent
				return armed && (c.Op == faulty.OpGet || c.Op == faulty.OpPutIfAbsent)
			}}
			switch o {
			case "pass":
				continue
			case "after":
				f.After = true
			}
			fs.Inject(f)
		}
		res, err := compact.Run(ctx, tbl, compact.Config{MaxAttempts: 1, MinFiles: 2})
		if err != nil {
			t.Fatalf("%v: %v", script, err)
		}
		if len(res.Partitions) != 2 {
			t.Fatalf("%v: %d partitions compacted, want 2", script, len(res.Partitions))
		}
		fs.Reset()
		after, err := tt.tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range localFiles(tt.dir, after) {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%v: the table references %s, which is gone (partition errors: %v)", script, p, res.Err())
			}
		}
		if t.Failed() {
			return
		}
		equalMultisets(t, fmt.Sprint(script), tableRows(t, db, tt.dir, after), want)
	}
}

// TestFaultInputReadFailsMidFile: reading an input fails after the new
// file's upload has started (it streams as it is encoded): the upload is
// aborted and nothing of it stays in the store, not even a temporary file.
func TestFaultInputReadFailsMidFile(t *testing.T) {
	ctx := context.Background()
	tt, fs, tbl := fourPartitions(t)
	fs.Inject(faulty.Fault{Op: faulty.OpGet, Nth: 3, Match: func(c faulty.Call) bool { return strings.HasSuffix(c.Key, ".zstd.parquet") }})
	res, err := compact.Run(ctx, tbl, compact.Config{RowGroupBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("Result.Err = %v, want the injected read failure", err)
	}
	checkNoOrphans(t, tt)
}
