package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
)

// TestSoftLimitObserve: the limit follows the smallest non-buffer heap of
// the window above the start, never goes below the start limit, and
// forgets a sample once softLimitWindow newer ones came.
func TestSoftLimitObserve(t *testing.T) {
	s := &softLimit{floor: 100, liveStart: 10, window: make([]int64, 3)}
	for i, c := range []struct{ live, held, want int64 }{
		{10, 0, 100},  // nothing above the start
		{50, 0, 100},  // the window's low is still the first sample
		{50, 5, 100},  // low 10
		{60, 10, 135}, // the first sample left the window: low 45
		{200, 0, 135}, // a passing peak does not raise it
		{90, 20, 140}, // low 50
		{5, 0, 100},   // below the start: the floor
	} {
		if got := s.observe(c.live, c.held); got != c.want {
			t.Errorf("sample %d (live %d, held %d): limit %d, want %d", i, c.live, c.held, got, c.want)
		}
	}
}

// TestRunSoftLimitAboveSnapshot: run on a table whose snapshot (24,000
// files with 1.5 KB of stats each, committed with commitlog directly) is
// more than twice memory_limit sets a soft memory limit above the live heap
// that holds the snapshot, with ¾ of memory_limit to spare. A limit set
// before the table is loaded would be below it: the collector would run
// continuously.
func TestRunSoftLimitAboveSnapshot(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set: run leaves the soft limit to it")
	}
	const memoryLimit = 16 << 20
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	brokers := startKafkaWith(t, "ads.click.stream", 4)
	dir := filepath.Join(t.TempDir(), "ads")
	conf := filepath.Join(t.TempDir(), "protolake.yaml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, runYAML, brokers[0], "file://"+dir, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	runOnce := func() {
		t.Helper()
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := run(ctx, []string{"run", "--config", conf, "--until-caught-up", fmt.Sprintf("--memory_limit=%d", memoryLimit)}, &stdout, &stderr); err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
	}
	runOnce() // creates the table

	ctx := context.Background()
	tbl, snap := openLocalTable(t, dir)
	pv := snap.Files()[0].PartitionValues
	tx := tbl.NewTransaction(snap)
	tx.SetOperation(commitlog.OpWrite, nil)
	stats := `{"numRecords":1,"minValues":{"impression_id":"` + strings.Repeat("a", 1500) + `"}}`
	for i := range 24_000 {
		tx.Add(commitlog.Add{Path: fmt.Sprintf("day=x/part-%06d.parquet", i), PartitionValues: pv, Size: 1000, DataChange: true, Stats: stats[:len(stats)-3] + fmt.Sprint(i) + `"}}`})
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tx, snap = nil, nil
	// As a new process would: the commit's heap goes back to the OS, so
	// the runtime holds only what is in use when run starts.
	debug.FreeOSMemory()

	cycles := func() uint64 {
		m := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(m)
		return m[0].Value.Uint64()
	}
	before, start := cycles(), time.Now()
	runOnce()
	limit := debug.SetMemoryLimit(-1)
	t.Logf("run: %d collections in %v", cycles()-before, time.Since(start).Round(time.Millisecond))

	// The live heap with the table's snapshot in it, as in run.
	loaded, err := commitlog.LoadSnapshot(ctx, tbl.Store(), commitlog.Latest, commitlog.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	live := liveHeap()
	if n := loaded.NumFiles(); n < 24_000 {
		t.Fatalf("snapshot has %d files", n)
	}
	runtime.KeepAlive(loaded)
	if live < 2*memoryLimit {
		t.Fatalf("live heap with the snapshot is %d MiB: not larger than memory_limit, the test proves nothing", live>>20)
	}
	if want := live + memoryLimit/2; limit < want {
		t.Errorf("soft memory limit %d MiB is below the live heap with the snapshot (%d MiB) + memory_limit/2: the collector runs continuously", limit>>20, live>>20)
	}
}
