package compact_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/internal/fixture"
	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/local"
)

const sharedTables = "../../shared/delta-tables"

// TestCompactOtherEngines compacts copies of the tables Spark and delta-rs
// wrote (snappy files, their own Parquet layouts) and checks with DuckDB
// that every table reads the same rows after, in the same partitions.
func TestCompactOtherEngines(t *testing.T) {
	entries, err := os.ReadDir(sharedTables)
	if err != nil {
		fixture.Missing(t, err)
	}
	ctx := context.Background()
	db := ducktest.Open(t)
	compacted := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			dir := fixture.CopyDir(t, filepath.Join(sharedTables, e.Name()))
			store, err := local.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := commitlog.Open(store, commitlog.Config{DisableCheckpoints: true})
			if err != nil {
				t.Fatal(err)
			}
			before, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range before.Files() {
				key, _ := url.PathUnescape(f.Path)
				rc, err := store.Get(ctx, key)
				if errors.Is(err, storage.ErrNotExist) {
					t.Skipf("table has no data file %s", f.Path)
				}
				if err != nil {
					t.Fatal(err)
				}
				rc.Close()
			}
			rowsBefore := tableRows(t, db, dir, before)
			res, err := compact.Run(ctx, tbl, compact.Config{MinFiles: 2, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			after, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Partitions) > 0 {
				compacted++
				if after.NumFiles() >= before.NumFiles() {
					t.Errorf("%d files before, %d after", before.NumFiles(), after.NumFiles())
				}
			}
			t.Logf("%d files → %d (%d partitions compacted, %d skipped)", before.NumFiles(), after.NumFiles(), len(res.Partitions), len(res.Plan.Skipped))
			equalMultisets(t, "after compaction", tableRows(t, db, dir, after), rowsBefore)
			// The new files' numRecords (merged stats or Parquet footers)
			// match what DuckDB counts.
			for _, f := range after.Files() {
				if f.DataChange {
					continue
				}
				var st struct{ NumRecords int64 }
				if err := json.Unmarshal([]byte(f.Stats), &st); err != nil {
					t.Fatalf("%s: stats %q: %v", f.Path, f.Stats, err)
				}
				key, _ := url.PathUnescape(f.Path)
				n := ducktest.Rows(t, db, "SELECT count(*) FROM read_parquet(?)", filepath.Join(dir, key))[0][0]
				if strconv.FormatInt(st.NumRecords, 10) != n {
					t.Errorf("%s: numRecords %d, DuckDB counts %s", f.Path, st.NumRecords, n)
				}
				checkTopLevelBounds(t, db, filepath.Join(dir, key), f.Stats)
			}
		})
	}
	if compacted < 3 {
		t.Errorf("only %d shared tables were compacted, want at least 3", compacted)
	}
}

// TestRefuseDeletionVectors: a table whose protocol needs deletion vectors
// is refused before anything is written.
func TestRefuseDeletionVectors(t *testing.T) {
	dir := t.TempDir()
	log := `{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}
{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":[],"configuration":{}}}
`
	if err := os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", "00000000000000000000.json"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	store, _ := local.New(dir)
	tbl, _ := commitlog.Open(store, commitlog.Config{})
	_, err := compact.Run(context.Background(), tbl, compact.Config{})
	if !errors.Is(err, commitlog.ErrUnsupportedProtocol) {
		t.Fatalf("Run on a deletion-vector table: %v, want ErrUnsupportedProtocol", err)
	}
}

// checkTopLevelBounds compares the integer and short string bounds of the
// top-level columns in stats with DuckDB's min and max over the file.
func checkTopLevelBounds(t *testing.T, db *sql.DB, file, stats string) {
	t.Helper()
	var st struct {
		MinValues map[string]any
		MaxValues map[string]any
	}
	d := json.NewDecoder(strings.NewReader(stats))
	d.UseNumber()
	if err := d.Decode(&st); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for col, minV := range st.MinValues {
		maxV := st.MaxValues[col]
		var want []string
		switch v := minV.(type) {
		case json.Number:
			if _, err := v.Int64(); err != nil {
				continue
			}
		case string:
			if len(v) >= 32 {
				continue
			}
			if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
				continue // timestamps are truncated to ms in stats
			}
		default:
			continue
		}
		q := fmt.Sprintf(`SELECT CAST(min("%s") AS VARCHAR), CAST(max("%s") AS VARCHAR) FROM read_parquet(?)`, col, col)
		want = ducktest.Rows(t, db, q, file)[0]
		if fmt.Sprint(minV) != want[0] || fmt.Sprint(maxV) != want[1] {
			t.Errorf("%s: stats bounds of %s = [%v, %v], DuckDB says %v", file, col, minV, maxV, want)
		}
		checked++
	}
	t.Logf("%s: %d top-level bounds checked against DuckDB", filepath.Base(file), checked)
}
