package compact_test

import (
	"context"
	"testing"

	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/writer"
)

// TestMixedParquetSchemas: files of one partition with different Parquet
// schemas (here: with and without the _unknown column, same tags) are never
// merged into one file: a bin becomes one file per run of equal schemas,
// and every row is kept.
func TestMixedParquetSchemas(t *testing.T) {
	ctx := context.Background()
	tt := newTestTable(t)
	for b := 0; b < 4; b++ {
		tt.appendBatch(t, 20, 1)
	}
	md := (&adtrackpb.AdImpression{}).ProtoReflect().Descriptor()
	st2, err := schema.Derive(md, schema.Options{Partitions: []string{"day(event_time)"}, NoUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	store, _ := local.New(tt.dir)
	if tt.w, err = writer.NewTable(writer.Config{}, st2, store); err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 4; b++ {
		tt.appendBatch(t, 20, 1)
	}
	before, _ := tt.tbl.Snapshot(ctx)
	db := ducktest.Open(t)
	const q = "SELECT impression_id, event_time, geo.country, _kafka.offset FROM read_parquet([%s], union_by_name=true) ORDER BY 4"
	rows := func(files []string) string {
		return fmtRows(ducktest.Rows(t, db, sprintf(q, quoteList(files))))
	}
	want := rows(localFiles(tt.dir, before))
	res, err := compact.Run(ctx, tt.tbl, compact.Config{MinFiles: 2})
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	after, _ := tt.tbl.Snapshot(ctx)
	if after.NumFiles() != 2 {
		t.Fatalf("%d files after, want 2 (one per Parquet schema)", after.NumFiles())
	}
	for _, f := range localFiles(tt.dir, after) {
		cols := ducktest.Rows(t, db, "SELECT count(*) FROM parquet_schema(?) WHERE name = '_unknown'", f)[0][0]
		n := ducktest.Rows(t, db, "SELECT count(*) FROM read_parquet(?)", f)[0][0]
		if n != "80" {
			t.Errorf("%s: %s rows (_unknown columns: %s), want the 80 rows of its 4 inputs", f, n, cols)
		}
	}
	if got := rows(localFiles(tt.dir, after)); got != want {
		t.Errorf("rows changed:\n got %s\nwant %s", got, want)
	}
}
