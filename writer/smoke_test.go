package writer

import (
	"context"
	"testing"
	"time"

	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

func TestSmokeAdImpression(t *testing.T) {
	tab := deriveTable(t, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression", schema.Options{})
	st := mem.New()
	w, err := NewTable(Config{}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := benchCorpus()
	ctx := context.Background()
	for i, m := range msgs[:3000] {
		if err := w.Write(ctx, m, Kafka{Topic: "ads", Partition: 1, Offset: int64(i), Timestamp: time.UnixMilli(1_790_000_000_000 + int64(i))}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	paths := export(t, st, files)
	db := ducktest.Open(t)
	rows := ducktest.Rows(t, db, "SELECT count(*), count(distinct impression_id), min(event_time), max(_kafka.offset) FROM "+ducktest.ReadParquet(paths...))
	t.Log(rows, files[0].Size)
	s, _ := files[0].Stats.JSON()
	t.Log(s)
	rows = ducktest.Rows(t, db, "SELECT * FROM "+ducktest.ReadParquet(paths...)+" LIMIT 2")
	t.Log(rows)
}
