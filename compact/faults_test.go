package compact_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/local"
)

// faultyTable returns a 4-partition table and a handle on it through a
// fault-injecting store.
func faultyTable(t *testing.T) (*testTable, *faulty.Store, *commitlog.Table) {
	t.Helper()
	tt := newTestTable(t)
	for b := 0; b < 6; b++ {
		tt.appendBatch(t, 20, 4)
	}
	inner, err := local.New(tt.dir)
	if err != nil {
		t.Fatal(err)
	}
	fs := faulty.New(inner)
	tbl, err := commitlog.Open(fs, commitlog.Config{DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	return tt, fs, tbl
}

// TestFaultUploadFails: the upload of one compacted file fails; that
// partition reports the error and commits nothing, the others commit, and
// no file is left behind.
func TestFaultUploadFails(t *testing.T) {
	ctx := context.Background()
	tt, fs, tbl := faultyTable(t)
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
	tt, fs, tbl := faultyTable(t)
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
