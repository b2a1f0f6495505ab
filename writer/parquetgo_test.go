package writer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

func readStored(t testing.TB, st *mem.Store, path string) []byte {
	t.Helper()
	r, err := st.Get(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func valueKey(v parquet.Value) string {
	return fmt.Sprintf("c%d r%d d%d %v %x", v.Column(), v.RepetitionLevel(), v.DefinitionLevel(), v.Kind(), v.Bytes())
}

// TestParquetGoReadBack reads the file with parquet-go: every value with
// its levels equals what dynamicpb decodes shredded by a generic walker, and
// the page index (column and offset indexes) agrees with the pages.
func TestParquetGoReadBack(t *testing.T) {
	tab := adTable(t, schema.Options{})
	st := mem.New()
	w, err := NewTable(Config{PageBytes: 4 << 10}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := benchCorpus()
	msgs = msgs[:2000]
	ts := time.UnixMilli(1_790_000_000_000)
	ctx := context.Background()
	for i, m := range msgs {
		if err := w.Write(ctx, m, Kafka{Topic: "ads", Partition: 3, Offset: int64(i), Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := readStored(t, st, files[0].Path)
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRows() != int64(len(msgs)) {
		t.Fatalf("parquet-go sees %d rows, want %d", pf.NumRows(), len(msgs))
	}
	rd := parquet.NewReader(pf)
	defer rd.Close()
	rows := make([]parquet.Row, 1)
	kc := tab.Plan.Kafka
	for i, m := range msgs {
		n, err := rd.ReadRows(rows)
		if n != 1 {
			t.Fatalf("row %d: %v", i, err)
		}
		dm := dynamicpb.NewMessage(tab.Plan.Message)
		if err := proto.Unmarshal(m, dm); err != nil {
			t.Fatal(err)
		}
		want := shredDynamic(nil, tab.Plan.Root, dm, 0)
		want = append(want,
			parquet.ByteArrayValue([]byte("ads")).Level(0, 2, kc.Topic),
			parquet.Int32Value(3).Level(0, 2, kc.Partition),
			parquet.Int64Value(int64(i)).Level(0, 2, kc.Offset),
			parquet.Int64Value(ts.UnixMicro()).Level(0, 2, kc.Timestamp),
			parquet.NullValue().Level(0, 0, tab.Plan.Unknown))
		sortRow(want)
		got := rows[0]
		if len(got) != len(want) {
			t.Fatalf("row %d: %d values, want %d", i, len(got), len(want))
		}
		for j := range got {
			if valueKey(got[j]) != valueKey(want[j]) {
				t.Fatalf("row %d value %d (%v): got %s, want %s", i, j, tab.Plan.Columns[want[j].Column()].Path, valueKey(got[j]), valueKey(want[j]))
			}
		}
	}
	// Page index consistency.
	rg := pf.RowGroups()[0]
	for ci, cc := range rg.ColumnChunks() {
		oi, err := cc.OffsetIndex()
		if err != nil {
			t.Fatalf("column %d: offset index: %v", ci, err)
		}
		cix, err := cc.ColumnIndex()
		if err != nil {
			t.Fatalf("column %d: column index: %v", ci, err)
		}
		pages := cc.Pages()
		row := int64(0)
		for p := 0; ; p++ {
			pg, err := pages.ReadPage()
			if err == io.EOF {
				if p != oi.NumPages() || p != cix.NumPages() {
					t.Errorf("column %d: %d pages, offset index %d, column index %d", ci, p, oi.NumPages(), cix.NumPages())
				}
				break
			}
			if err != nil {
				t.Fatalf("column %d page %d: %v", ci, p, err)
			}
			if oi.FirstRowIndex(p) != row {
				t.Errorf("column %d page %d: first row %d, offset index %d", ci, p, row, oi.FirstRowIndex(p))
			}
			row += pg.NumRows()
			if got := pg.NumNulls(); got != cix.NullCount(p) {
				t.Errorf("column %d page %d: %d nulls, column index %d", ci, p, got, cix.NullCount(p))
			}
			mn, mx, ok := pg.Bounds()
			if ok != !cix.NullPage(p) {
				t.Errorf("column %d page %d: bounds %v, null page %v", ci, p, ok, cix.NullPage(p))
			}
			if ok && cc.Type().Kind() != parquet.ByteArray {
				if !parquet.Equal(mn, cix.MinValue(p)) || !parquet.Equal(mx, cix.MaxValue(p)) {
					t.Errorf("column %d page %d: bounds %v..%v, column index %v..%v", ci, p, mn, mx, cix.MinValue(p), cix.MaxValue(p))
				}
			}
			parquet.Release(pg)
		}
		pages.Close()
		if row != pf.NumRows() {
			t.Errorf("column %d: pages hold %d rows", ci, row)
		}
	}
}
