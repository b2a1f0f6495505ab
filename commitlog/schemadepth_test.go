package commitlog

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// TestSchemaDepthAgreesWithSchema: the log's schema parser and
// schema.ParseSchemaString accept exactly schema.MaxTypeDepth levels, the
// limit schema.Derive enforces.
func TestSchemaDepthAgreesWithSchema(t *testing.T) {
	nested := func(depth int) string {
		typ := `"long"`
		for range depth {
			typ = `{"type":"struct","fields":[{"name":"a","type":` + typ + `,"nullable":true,"metadata":{}}]}`
		}
		return `{"type":"struct","fields":[{"name":"c","type":` + typ + `,"nullable":true,"metadata":{}}]}`
	}
	for _, depth := range []int{schema.MaxTypeDepth, schema.MaxTypeDepth + 1} {
		s := nested(depth)
		_, errLog := SchemaColumns(s)
		_, errSchema := schema.ParseSchemaString(s)
		ok := depth <= schema.MaxTypeDepth
		if (errLog == nil) != ok || (errSchema == nil) != ok {
			t.Errorf("depth %d: commitlog %v, schema %v; want both to accept: %v", depth, errLog, errSchema, ok)
		}
		if !ok && !strings.Contains(errLog.Error(), "deeper than") {
			t.Errorf("depth %d: %v", depth, errLog)
		}
	}
}

// TestNoSchemaString: a metaData without schemaString (Spark's golden
// tables have one) is read as an empty schema; writing to it is refused.
func TestNoSchemaString(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	entry := `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}
{"metaData":{"id":"no-schema","format":{"provider":"parquet","options":{}},"partitionColumns":[],"configuration":{},"createdTime":1}}
`
	if err := st.PutIfAbsent(ctx, "_delta_log/00000000000000000000.json", strings.NewReader(entry)); err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatalf("snapshot of a table without schemaString: %v", err)
	}
	if cols, err := SchemaColumns(snap.Metadata().SchemaString); err != nil || len(cols) != 0 {
		t.Errorf("SchemaColumns = %v, %v; want no columns", cols, err)
	}
	if err := CheckWritable(snap.Protocol(), snap.Metadata()); !errors.Is(err, ErrNoSchema) {
		t.Errorf("CheckWritable = %v, want ErrNoSchema", err)
	}
	tx := tbl.NewTransaction(snap)
	tx.Add(Add{Path: "part-1.parquet", PartitionValues: map[string]*string{}, Size: 1, DataChange: true})
	if _, err := tx.Commit(ctx); !errors.Is(err, ErrNoSchema) {
		t.Errorf("commit to a table without schema: %v, want ErrNoSchema", err)
	}
	if _, err := NewMetadata(TableSpec{}, 0); !errors.Is(err, ErrNoSchema) {
		t.Errorf("NewMetadata without schema: %v, want ErrNoSchema", err)
	}
}
