package commitlog

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/protolake/protolake/storage/mem"
)

var update = flag.Bool("update", false, "rewrite golden files")

var txnIDRE = regexp.MustCompile(`"txnId":"[0-9a-f-]{36}"`)

// TestCommitGolden pins the exact log entries protolake writes (the format
// docs/log-format.md describes): table creation, an ingest commit, a
// compaction. Random txnIds are masked.
func TestCommitGolden(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tbl, err := Open(st, Config{EngineInfo: "protolake/test", Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec()
	spec.ID = "00000000-0000-4000-8000-000000000000"
	snap, err := tbl.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	tx := tbl.NewTransaction(snap)
	tx.SetOperation(OpStreamingUpdate, map[string]any{"outputMode": "Append", "source": "kafka"})
	tx.Add(testAdd("part-a.c000.zstd.parquet"), testAdd("part-b.c000.zstd.parquet"))
	tx.AddKafkaOffsets("lake", OffsetRange{Topic: "clicks", Partition: 3, First: 100, Last: 199})
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tx = tbl.NewTransaction(mustSnapshot(t, tbl))
	tx.SetOperation(OpOptimize, nil)
	for _, f := range mustSnapshot(t, tbl).Files() {
		tx.Remove(f.ToRemove(false))
	}
	c := testAdd("part-c.c000.zstd.parquet")
	c.DataChange, c.Size, c.Stats = false, 200, `{"numRecords":20}`
	tx.Add(c)
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for v := int64(0); v <= 2; v++ {
		data, err := readAll(ctx, st, CommitKey(v))
		if err != nil {
			t.Fatal(err)
		}
		got := txnIDRE.ReplaceAll(data, []byte(`"txnId":"<uuid>"`))
		path := filepath.Join("testdata", "log", filepath.Base(CommitKey(v))+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if string(got) != string(want) {
			t.Errorf("version %d differs from %s (run with -update after checking):\n%s", v, path, got)
		}
	}
}
