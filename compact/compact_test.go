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
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/internal/ducktest"
)

// TestCompact200Files compacts 200 small files over 4 partitions into one
// file per partition and checks the rows (DuckDB, as multisets), the stats
// of the new files against DuckDB's aggregates, the commit, and time travel.
func TestCompact200Files(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t)
	for b := 0; b < 50; b++ {
		tt.appendBatch(t, 40, 4)
	}
	before, err := tt.tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.NumFiles() != 200 {
		t.Fatalf("setup: %d files, want 200", before.NumFiles())
	}
	db := ducktest.Open(t)
	rowsBefore := tableRows(t, db, tt.dir, before)

	var last compact.Progress
	res, err := compact.Run(ctx, tt.tbl, compact.Config{MaxConcurrent: 2, Logger: testLogger(t), Progress: func(p compact.Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if len(res.Partitions) != 4 {
		t.Fatalf("%d partitions compacted, want 4", len(res.Partitions))
	}
	if last.FilesDone != 200 || last.FilesTotal != 200 || last.BytesDone != before.TotalSize() || last.PartitionsDone != 4 {
		t.Errorf("last progress %+v, want 200/200 files, %d bytes, 4 partitions", last, before.TotalSize())
	}
	after, err := tt.tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.NumFiles() != 4 {
		t.Errorf("after: %d files, want 4", after.NumFiles())
	}
	if after.Version() != before.Version()+4 {
		t.Errorf("after: version %d, want %d (one commit per partition)", after.Version(), before.Version()+4)
	}
	equalMultisets(t, "after compaction", tableRows(t, db, tt.dir, after), rowsBefore)

	// Watermarks and pin unchanged.
	if fmt.Sprint(after.Txns()) != fmt.Sprint(before.Txns()) {
		t.Errorf("txns changed: %v → %v", before.Txns(), after.Txns())
	}
	if a, b := commitlog.PinOf(after.Metadata()), commitlog.PinOf(before.Metadata()); a.Fingerprint != b.Fingerprint || a.Version != b.Version || a.Message != b.Message {
		t.Errorf("pin changed")
	}

	oldFile := localFiles(tt.dir, before)[0]
	// Every new add: dataChange false, fingerprint tag, zstd name, stats
	// equal to DuckDB's aggregates over the file.
	for _, f := range after.Files() {
		if f.DataChange {
			t.Errorf("%s: dataChange true", f.Path)
		}
		if f.Tags[commitlog.TagProtoFingerprint] != tt.pin.Fingerprint {
			t.Errorf("%s: tags %v, want the fingerprint", f.Path, f.Tags)
		}
		if !strings.HasPrefix(f.Path, "event_time_day=") || !strings.HasSuffix(f.Path, ".c000.zstd.parquet") || !strings.Contains(f.Path, "/part-") {
			t.Errorf("file name %s, want event_time_day=…/part-<uuid>.c000.zstd.parquet", f.Path)
		}
		checkStats(t, db, tt.dir, f)
		p, _ := url.PathUnescape(f.Path)
		local := filepath.Join(tt.dir, filepath.FromSlash(p))
		if got := ducktest.Rows(t, db, "SELECT DISTINCT compression FROM parquet_metadata(?)", local); len(got) != 1 || got[0][0] != "ZSTD" {
			t.Errorf("%s: compression %v, want ZSTD only", f.Path, got)
		}
		// converted_type is left out: parquet-go adds the legacy INT_64/INT_32
		// annotation next to the integer logical type, which the writer omits.
		const schemaQ = "SELECT name, type, field_id, repetition_type, logical_type FROM parquet_schema(?)"
		if got, want := ducktest.Rows(t, db, schemaQ, local), ducktest.Rows(t, db, schemaQ, oldFile); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: Parquet schema differs from the inputs' (names, types, field ids):\n got %v\nwant %v", f.Path, got, want)
		}
	}

	// The commits: OPTIMIZE, dataChange false, metrics.
	hist, err := tt.tbl.History(ctx, commitlog.Latest)
	if err != nil {
		t.Fatal(err)
	}
	var removed, added int
	for _, e := range hist[len(hist)-4:] {
		ci := e.CommitInfo
		if ci == nil || ci.Operation != commitlog.OpOptimize {
			t.Fatalf("version %d: commitInfo %+v, want OPTIMIZE", e.Version, ci)
		}
		if e.NumAdds != 1 || e.NumRemoves != 50 {
			t.Errorf("version %d: %d adds %d removes, want 1 and 50", e.Version, e.NumAdds, e.NumRemoves)
		}
		if ci.OperationMetrics["numRemovedFiles"] != "50" || ci.OperationMetrics["numAddedFiles"] != "1" {
			t.Errorf("version %d: metrics %v", e.Version, ci.OperationMetrics)
		}
		n, _ := strconv.Atoi(ci.OperationMetrics["numRemovedFiles"])
		removed += n
		n, _ = strconv.Atoi(ci.OperationMetrics["numAddedFiles"])
		added += n
		if ci.IsBlindAppend != nil && *ci.IsBlindAppend {
			t.Errorf("version %d: isBlindAppend true", e.Version)
		}
	}
	if removed != 200 || added != 4 {
		t.Errorf("metrics: %d removed, %d added", removed, added)
	}
	for _, r := range after.Tombstones() {
		if r.DataChange {
			t.Errorf("remove %s has dataChange true", r.Path)
		}
	}

	// Time travel: the previous version still reads the old files.
	old, err := tt.tbl.SnapshotAt(ctx, before.Version())
	if err != nil {
		t.Fatal(err)
	}
	if old.NumFiles() != 200 {
		t.Errorf("time travel: %d files, want 200", old.NumFiles())
	}
	equalMultisets(t, "time travel", tableRows(t, db, tt.dir, old), rowsBefore)

	// A second run finds nothing to do.
	res2, err := compact.Run(ctx, tt.tbl, compact.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Plan.Partitions) != 0 || len(res2.Plan.Skipped) != 4 {
		t.Errorf("second run planned %d partitions, skipped %d; want 0 and 4", len(res2.Plan.Partitions), len(res2.Plan.Skipped))
	}
}

// checkStats compares a file's stats with DuckDB's aggregates over it for
// columns of several types (long, string, timestamp, nested string, double).
func checkStats(t *testing.T, db *sql.DB, dir string, f commitlog.Add) {
	t.Helper()
	var st struct {
		NumRecords int64          `json:"numRecords"`
		MinValues  map[string]any `json:"minValues"`
		MaxValues  map[string]any `json:"maxValues"`
		NullCount  map[string]any `json:"nullCount"`
	}
	d := json.NewDecoder(strings.NewReader(f.Stats))
	d.UseNumber()
	if err := d.Decode(&st); err != nil {
		t.Fatalf("%s: stats %q: %v", f.Path, f.Stats, err)
	}
	p, _ := url.PathUnescape(f.Path)
	src := ducktest.ReadParquet(filepath.Join(dir, filepath.FromSlash(p)))
	get := func(m map[string]any, path string) string {
		var v any = m
		for _, k := range strings.Split(path, ".") {
			mm, ok := v.(map[string]any)
			if !ok {
				return "<missing>"
			}
			v = mm[k]
		}
		if v == nil {
			return "<missing>"
		}
		return fmt.Sprint(v)
	}
	row := ducktest.Rows(t, db, "SELECT count(*) FROM "+src)[0]
	if row[0] != strconv.FormatInt(st.NumRecords, 10) {
		t.Errorf("%s: numRecords %d, DuckDB counts %s", f.Path, st.NumRecords, row[0])
	}
	for _, c := range []struct{ path, sql string }{
		{"advertiser_id", "advertiser_id"},
		{"campaign_id", "campaign_id"},
		{"event_time", "strftime(event_time AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ')"},
		{"geo.country", "geo.country"},
		{"viewable_ms", "viewable_ms"},
		{"geo.postal_code", "geo.postal_code"},
	} {
		r := ducktest.Rows(t, db, fmt.Sprintf("SELECT min(%s), max(%s), count(*) - count(%s) FROM %s", c.sql, c.sql, c.sql, src))[0]
		if got := get(st.MinValues, c.path); got != r[0] {
			t.Errorf("%s: minValues.%s = %s, DuckDB says %s", f.Path, c.path, got, r[0])
		}
		if got := get(st.MaxValues, c.path); got != r[1] {
			t.Errorf("%s: maxValues.%s = %s, DuckDB says %s", f.Path, c.path, got, r[1])
		}
		if got := get(st.NullCount, c.path); got != r[2] {
			t.Errorf("%s: nullCount.%s = %s, DuckDB says %s", f.Path, c.path, got, r[2])
		}
	}
}

// TestCompactTargetAndWhere: a small target size makes several files per
// partition; --where limits the partitions; --min-files leaves small
// partitions alone; dry run writes nothing.
func TestCompactTargetAndWhere(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t)
	for b := 0; b < 20; b++ {
		tt.appendBatch(t, 40, 4)
	}
	before, _ := tt.tbl.Snapshot(ctx)
	var per int64
	for _, f := range before.Files() {
		per = max(per, f.Size)
	}
	target := per*5 + per/2 // about 5 inputs per bin

	dry, err := compact.Run(ctx, tt.tbl, compact.Config{TargetSize: target, DryRun: true, Where: `event_time_day >= "2026-11-02" AND event_time_day != '2026-11-04'`})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(dry.Plan.Partitions); got != 2 {
		t.Fatalf("dry run planned %d partitions, want 2 (11-02, 11-03)", got)
	}
	for _, p := range dry.Plan.Partitions {
		if p.Path != "event_time_day=2026-11-02" && p.Path != "event_time_day=2026-11-03" {
			t.Errorf("planned %s", p.Path)
		}
		if len(p.Bins) < 4 {
			t.Errorf("%s: %d bins, want >= 4 for 20 files with a target of ~5 files", p.Path, len(p.Bins))
		}
	}
	if s, _ := tt.tbl.Snapshot(ctx); s.Version() != before.Version() {
		t.Fatalf("dry run committed")
	}

	res, err := compact.Run(ctx, tt.tbl, compact.Config{TargetSize: target, Where: `event_time_day IN ('2026-11-01', "2026-11-02")`})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	after, _ := tt.tbl.Snapshot(ctx)
	counts := map[string]int{}
	for _, f := range after.Files() {
		counts[*f.PartitionValues["event_time_day"]]++
		if f.Size > target*2 {
			t.Errorf("%s: %d bytes, far above the target %d", f.Path, f.Size, target)
		}
	}
	for _, d := range []string{"2026-11-03", "2026-11-04"} {
		if counts[d] != 20 {
			t.Errorf("partition %s: %d files, want 20 (not matched by --where)", d, counts[d])
		}
	}
	for _, d := range []string{"2026-11-01", "2026-11-02"} {
		if counts[d] < 3 || counts[d] > 6 {
			t.Errorf("partition %s: %d files, want about 4", d, counts[d])
		}
	}
	db := ducktest.Open(t)
	equalMultisets(t, "after", tableRows(t, db, tt.dir, after), tableRows(t, db, tt.dir, before))

	// --min-files above the count leaves everything alone.
	res, err = compact.Run(ctx, tt.tbl, compact.Config{MinFiles: 21})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Partitions) != 0 {
		t.Errorf("--min-files 21 planned %d partitions", len(res.Plan.Partitions))
	}

	// A predicate on a non-partition column is refused.
	if _, err := compact.Run(ctx, tt.tbl, compact.Config{Where: "campaign_id = 'x'"}); !errors.Is(err, compact.ErrPredicate) {
		t.Errorf("where on a data column: %v, want ErrPredicate", err)
	}
}

var _ = json.Marshal

// TestOnePartitionFails: a corrupt input in one partition fails that
// partition only; the other three commit, and the failed one is unchanged.
func TestOnePartitionFails(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t)
	for b := 0; b < 6; b++ {
		tt.appendBatch(t, 20, 4)
	}
	before, _ := tt.tbl.Snapshot(ctx)
	var bad string
	for _, f := range before.Files() {
		if *f.PartitionValues["event_time_day"] == "2026-11-03" {
			bad = f.Path
			break
		}
	}
	p, _ := url.PathUnescape(bad)
	if err := os.WriteFile(filepath.Join(tt.dir, filepath.FromSlash(p)), []byte("not parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := compact.Run(ctx, tt.tbl, compact.Config{MaxConcurrent: 2})
	if err != nil {
		t.Fatal(err)
	}
	err = res.Err()
	var pe *compact.PartitionError
	if !errors.As(err, &pe) || pe.Path != "event_time_day=2026-11-03" || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Result.Err = %v, want the failure of event_time_day=2026-11-03 naming %s", err, bad)
	}
	ok := 0
	for _, r := range res.Partitions {
		if r.Err == nil && r.Version >= 0 {
			ok++
		}
	}
	if ok != 3 {
		t.Errorf("%d partitions committed, want 3", ok)
	}
	after, _ := tt.tbl.Snapshot(ctx)
	counts := map[string]int{}
	for _, f := range after.Files() {
		counts[*f.PartitionValues["event_time_day"]]++
	}
	if counts["2026-11-03"] != 6 || counts["2026-11-01"] != 1 || counts["2026-11-02"] != 1 || counts["2026-11-04"] != 1 {
		t.Errorf("files per partition after: %v", counts)
	}
}

// TestRowGroupBytes: inputs are written in chunks of RowGroupBytes (what
// bounds the memory), each an output row group, with the rows unchanged.
func TestRowGroupBytes(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t)
	for b := 0; b < 30; b++ {
		tt.appendBatch(t, 30, 1)
	}
	before, _ := tt.tbl.Snapshot(ctx)
	per := before.TotalSize() / 30
	res, err := compact.Run(ctx, tt.tbl, compact.Config{RowGroupBytes: 3 * per})
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	after, _ := tt.tbl.Snapshot(ctx)
	if after.NumFiles() != 1 {
		t.Fatalf("%d files, want 1", after.NumFiles())
	}
	db := ducktest.Open(t)
	rgs := ducktest.Rows(t, db, "SELECT count(DISTINCT row_group_id) FROM parquet_metadata(?)", localFiles(tt.dir, after)[0])[0][0]
	if n, _ := strconv.Atoi(rgs); n < 8 || n > 12 {
		t.Errorf("%s row groups, want about 10 (30 inputs, 3 per row group)", rgs)
	}
	equalMultisets(t, "after", tableRows(t, db, tt.dir, after), tableRows(t, db, tt.dir, before))
}

// TestSortBy: with SortBy the rows of each new file are ordered by the
// column (nulls first), the multiset unchanged; an unknown column fails the
// partition with a message listing the columns.
func TestSortBy(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t)
	for b := 0; b < 6; b++ {
		tt.appendBatch(t, 50, 1)
	}
	db := ducktest.Open(t)
	before, _ := tt.tbl.Snapshot(ctx)
	want := tableRows(t, db, tt.dir, before)

	// Refused before anything is planned or read, naming the sortable
	// columns (top-level primitives; not the structs _kafka, geo, device).
	res, err := compact.Run(ctx, tt.tbl, compact.Config{SortBy: "no_such_column"})
	if !errors.Is(err, compact.ErrSortBy) || res != nil {
		t.Fatalf("unknown sort column: %v, %v; want ErrSortBy and no result", res, err)
	}
	if !strings.Contains(err.Error(), `compact: invalid sort column "no_such_column": no such column; sortable columns: `) || !strings.Contains(err.Error(), "campaign_id") {
		t.Errorf("unknown sort column: %v, want an error listing the sortable columns", err)
	}

	res, err = compact.Run(ctx, tt.tbl, compact.Config{SortBy: "campaign_id"})
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	after, _ := tt.tbl.Snapshot(ctx)
	if after.NumFiles() != 1 {
		t.Fatalf("%d files, want 1", after.NumFiles())
	}
	var ids []string
	for _, r := range ducktest.Rows(t, db, "SELECT campaign_id FROM read_parquet(?)", localFiles(tt.dir, after)[0]) {
		ids = append(ids, r[0])
	}
	if len(ids) != 300 || !sort.StringsAreSorted(ids) {
		t.Errorf("%d rows, sorted by campaign_id: %v", len(ids), sort.StringsAreSorted(ids))
	}
	equalMultisets(t, "sorted", tableRows(t, db, tt.dir, after), want)
	if p := res.Partitions[0]; p.Version < 0 {
		t.Errorf("no commit: %+v", p)
	}
}
