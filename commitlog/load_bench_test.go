package commitlog

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/protolake/protolake/storage/local"
)

// BenchmarkSnapshotLoad measures loading a table from its checkpoint as
// the table grows: 1,000, 10,000 and 100,000 active files
// (PLTEST_BENCH_FILES overrides, comma-separated) on local disk, each file
// with the 12-column stats of BenchmarkCommitScale. For each size,
// "columns" is LoadSnapshot (the column decoder) and "rows" the baseline in
// the same run: the row-struct decoder it replaced, on the checkpoint read
// into memory as before; "json" is LoadSnapshot of the same files in JSON
// commits of 1,000 files without a checkpoint (a replay). Reported: ns/file, allocated B/file, live-B/file
// (heap still held by the loaded snapshot, after a GC), the ratio of
// ns/file and of live-B/file to the smallest size (x-small-time,
// x-small-live) and, for columns, its time over the rows baseline's at
// that size (x-rows).
func BenchmarkSnapshotLoad(b *testing.B) {
	sizes := benchSizes(b, "PLTEST_BENCH_FILES", []int{1000, 10000, 100000})
	ctx := context.Background()
	base := map[string][2]float64{}
	rowsNs := 0.0
	for _, n := range sizes {
		st, jst := loadBenchTable(b, n, true), loadBenchTable(b, n, false)
		for _, kind := range []string{"rows", "columns", "json"} {
			load := func() (*Snapshot, error) { return LoadSnapshot(ctx, st, Latest, LoadOptions{}) }
			switch kind {
			case "rows":
				load = func() (*Snapshot, error) { return loadRowsBaseline(ctx, st) }
			case "json":
				load = func() (*Snapshot, error) { return LoadSnapshot(ctx, jst, Latest, LoadOptions{}) }
			}
			b.Run(fmt.Sprintf("files=%d/%s", n, kind), func(b *testing.B) {
				b.ReportAllocs()
				var s *Snapshot
				for b.Loop() {
					s = nil
					var err error
					if s, err = load(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(n)
				live := liveBytes(func() { s = nil }, func() { s, _ = load() }) / float64(n)
				if s == nil || s.NumFiles() != n {
					b.Fatalf("loaded %v, want %d files", s, n)
				}
				b.ReportMetric(ns, "ns/file")
				b.ReportMetric(live, "live-B/file")
				if n == sizes[0] {
					base[kind] = [2]float64{ns, live}
				}
				b.ReportMetric(ns/base[kind][0], "x-small-time")
				b.ReportMetric(live/base[kind][1], "x-small-live")
				switch kind {
				case "rows":
					rowsNs = ns
				case "columns":
					b.ReportMetric(ns/rowsNs, "x-rows")
				}
			})
		}
	}
}

// liveBytes returns the heap a value built by load keeps alive: the heap
// after a GC with it, less the heap after drop and a GC. Two GCs each time:
// the second frees what sync.Pools (parquet-go's page buffers) kept
// through the first.
func liveBytes(drop, load func()) float64 {
	var before, after runtime.MemStats
	drop()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	load()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// loadBenchTable writes a table of n files on local disk, in commits of
// at most 1,000 files, and checkpoints it when checkpoint is set.
func loadBenchTable(b *testing.B, n int, checkpoint bool) *local.Store {
	ctx := context.Background()
	st := newLocal(b)
	tbl, err := Open(st, Config{DisableCheckpoints: true})
	if err != nil {
		b.Fatal(err)
	}
	kept, err := tbl.Create(ctx, testSpec())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 1000 {
		tx := tbl.NewTransaction(kept)
		for j := i; j < min(n, i+1000); j++ {
			day := fmt.Sprintf("2026-01-%02d", j%28+1)
			tx.Add(Add{Path: fmt.Sprintf("day=%s/part-%08d-5f0c1b2a-0000-4000-8000-000000000000.c000.zstd.parquet", day, j),
				PartitionValues: map[string]*string{"day": &day}, Size: 1 << 20, DataChange: true, Stats: scaleStats})
		}
		res, err := tx.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		kept = res.Snapshot
	}
	if checkpoint {
		if _, err := tbl.writeCheckpoint(ctx, kept); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// loadRowsBaseline loads the newest checkpoint the way LoadSnapshot did
// before the column decoder: the whole file read into memory, then every
// row through the row-struct decoder (parseTyped).
func loadRowsBaseline(ctx context.Context, st *local.Store) (*Snapshot, error) {
	lc, err := ReadLastCheckpoint(ctx, st)
	if err != nil {
		return nil, err
	}
	data, err := readAll(ctx, st, CheckpointKey(lc.Version))
	if err != nil {
		return nil, err
	}
	if err := checkParquetBounds(data); err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, err
	}
	s := newSnapshot()
	if err := parseTyped(pf, func(a Action) {
		if checkActionPath(a) == nil {
			s.apply(a)
		}
	}); err != nil {
		return nil, err
	}
	s.version = lc.Version
	return s.freeze(), nil
}
