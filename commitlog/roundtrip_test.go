package commitlog

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/local"
)

type rtRow struct {
	ID int64 `parquet:"id"`
}

// writeDataFile uploads a Parquet file of n rows at the decoded path and
// returns its add action with the URI-encoded path, as the writer does.
func writeDataFile(t *testing.T, st Store, day, name string, first, n int) Add {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[rtRow](&buf)
	rows := make([]rtRow, n)
	for i := range rows {
		rows[i] = rtRow{ID: int64(first + i)}
	}
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	decoded := "day=" + day + "/" + name
	if err := st.Put(context.Background(), decoded, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	return Add{
		Path:            "day=" + url.PathEscape(day) + "/" + name,
		PartitionValues: map[string]*string{"day": &day},
		Size:            int64(buf.Len()),
		DataChange:      true,
		Stats:           fmt.Sprintf(`{"numRecords":%d,"minValues":{"id":%d},"maxValues":{"id":%d},"nullCount":{"id":0}}`, n, first, first+n-1),
	}
}

// TestRoundTripDuckDB writes a table (appends, then a compaction), reads it
// back with our snapshot and with DuckDB over the active files, and compares
// row counts at every version.
func TestRoundTripDuckDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(st, Config{CheckpointInterval: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	days := []string{"2026-01-01", "2026-01-02", "odd day: a b%c"} // the last needs URI encoding
	var written int64
	for i := 0; i < 6; i++ {
		day := days[i%len(days)]
		add := writeDataFile(t, st, day, "part-"+strconv.Itoa(i)+".parquet", i*100, 10+i)
		written += int64(10 + i)
		tx := tbl.NewTransaction(mustSnapshot(t, tbl))
		tx.Add(add)
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Compact the odd day's two files into one, rows unchanged.
	s := mustSnapshot(t, tbl)
	tx := tbl.NewTransaction(s)
	var n int
	for _, f := range s.Files() {
		if *f.PartitionValues["day"] == days[2] {
			tx.Remove(Remove{Path: f.Path, DataChange: false, PartitionValues: f.PartitionValues, Size: &f.Size})
			c, _ := statsNumRecords(f.Stats)
			n += int(c)
		}
	}
	tx.Add(func() Add {
		a := writeDataFile(t, st, days[2], "part-compacted.parquet", 10000, n)
		a.DataChange = false
		return a
	}())
	tx.SetOperation(OpOptimize, nil)
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	db := ducktest.Open(t)
	latest := mustSnapshot(t, tbl).Version()
	for v := int64(1); v <= latest; v++ {
		snap := mustSnapshotAt(t, tbl, v)
		ours, ok := snap.NumRecords()
		if !ok {
			t.Fatalf("version %d: stats missing", v)
		}
		var paths []string
		for _, f := range snap.Files() {
			paths = append(paths, filepath.Join(dir, filepath.FromSlash(decodePath(f.Path))))
		}
		rows := ducktest.Rows(t, db, "SELECT count(*) FROM "+ducktest.ReadParquet(paths...))
		if rows[0][0] != strconv.FormatInt(ours, 10) {
			t.Errorf("version %d: DuckDB counts %s rows, our snapshot %d", v, rows[0][0], ours)
		}
	}
	if got, _ := mustSnapshot(t, tbl).NumRecords(); got != written {
		t.Errorf("latest has %d rows, %d were written", got, written)
	}
	if s := mustSnapshot(t, tbl); s.NumFiles() != 5 {
		t.Errorf("latest has %d files, want 5 after compacting 2 into 1", s.NumFiles())
	}
}
