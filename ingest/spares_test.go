package ingest_test

import (
	"context"
	"testing"

	"github.com/protolake/protolake/ingest"
)

// TestSpareBudgetShared: the writers of every table, main and dead-letter,
// share one budget of memory_limit/16 for the buffers they keep from
// finished files (writer.Config.Spares), which memory_limit does not count.
func TestSpareBudgetShared(t *testing.T) {
	dir := tempDir(t)
	cfg := baseConfig(t, []string{"127.0.0.1:1"}, dir)
	second := cfg.Tables[0]
	second.Name, second.URI, second.Topics = "second", dir+"/second", []string{"other"}
	cfg.Tables = append(cfg.Tables, second)
	cfg.MemoryLimit = 64 << 20
	cfg.DecodeWorkers = 2
	r, err := ingest.NewRunner(context.Background(), cfg, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, left := ingest.SpareSinks(r); n != 4 || left != 4<<20 {
		t.Fatalf("%d sinks share the spare budget, %d bytes left; want 4 (two tables' main and dead-letter), %d", n, left, 4<<20)
	}
}
