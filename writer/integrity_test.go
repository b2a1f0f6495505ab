package writer

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// writeAndCompare writes every wire message as one row of md's table into
// one file, reads the file back with DuckDB (SELECT *) and compares each row
// with what protobuf-go decodes.
func writeAndCompare(t *testing.T, set, msg string, opts schema.Options, wires [][]byte) {
	t.Helper()
	md := loadMessage(t, set, msg)
	tab, err := schema.Derive(md, opts)
	if err != nil {
		t.Fatal(err)
	}
	st := mem.New()
	w, err := NewTable(Config{}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var want []*dynamicpb.Message
	for i, wire := range wires {
		dm := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(wire, dm); err != nil {
			t.Fatalf("message %d: protobuf-go rejects it: %v", i, err)
		}
		want = append(want, dm)
		if err := w.Write(ctx, wire, Kafka{Topic: "t", Offset: int64(i), Timestamp: time.UnixMilli(0)}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	rows := readRows(t, export(t, st, files))
	if len(rows) != len(wires) {
		t.Fatalf("DuckDB read %d rows, want %d", len(rows), len(wires))
	}
	c := &cmpCtx{t: t}
	for i, row := range rows {
		c.checkMessage(tab.Plan.Root, want[i], row, "")
		if len(c.errs) > 0 {
			t.Fatalf("row %d: %v", i, c.errs)
		}
	}
}

// TestEmptyPackedChunk: a repeated scalar sent as a packed chunk of length 0
// is zero elements to protobuf; the row must still get its (empty list)
// level, or every reader fails on the whole file.
func TestEmptyPackedChunk(t *testing.T) {
	good := tagB(tagV(nil, 1, 3), 14, []byte("ok"))
	cases := map[string][]byte{
		"only an empty chunk":             tagB(nil, 6, nil),
		"scalar then empty fixed64 chunk": tagB(tagV(nil, 6, 0x30), 8, nil),
		"empty chunk then elements":       tagV(tagB(nil, 1, nil), 1, 5),
		"elements then empty chunk":       tagB(tagB(nil, 1, packedV(1, 2)), 1, nil),
		"two empty chunks":                tagB(tagB(nil, 12, nil), 12, nil),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			var wires [][]byte
			for range 100 {
				wires = append(wires, good)
			}
			wires = append(wires, bad)
			for range 10 {
				wires = append(wires, good)
			}
			writeAndCompare(t, "edge/edge.binpb", "edge.RepeatedScalars", schema.Options{}, wires)
		})
	}
}
