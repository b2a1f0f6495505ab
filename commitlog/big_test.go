package commitlog

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/internal/bigtest"
	"github.com/protolake/protolake/storage/local"
)

// bigStats is the stats string of a file with cols columns, each with a
// 32-character min and max (strings are cut to 32 characters) and a null
// count: about 90 bytes per column.
func bigStats(i, cols int) string {
	var b strings.Builder
	b.Grow(cols * 96)
	lo, hi := fmt.Sprintf("%032d", i), fmt.Sprintf("%032d", i+999)
	b.WriteString(`{"numRecords":`)
	b.WriteString(strconv.Itoa(1000 + i%1000))
	for _, part := range []struct{ name, value string }{{"minValues", `"` + lo + `"`}, {"maxValues", `"` + hi + `"`}, {"nullCount", "0"}} {
		b.WriteString(`,"` + part.name + `":{`)
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"column_`)
			b.WriteByte(byte('0' + c/10%10))
			b.WriteByte(byte('0' + c%10))
			b.WriteString(`":`)
			b.WriteString(part.value)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.String()
}

// TestMillionFiles writes a table of 1,000,000 active files (100 commits of
// 10,000), checkpoints it, cleans the log up to the checkpoint and reopens
// it in a fresh process, reporting the time and peak RSS of the reopen; with
// PLTEST_BIG_DELTARS=<python with deltalake> delta-rs loads the same
// table in another process for comparison. It runs with PLTEST_BIG=1
// (minutes, gigabytes). PLTEST_BIG_FILES changes the file count,
// PLTEST_BIG_STATS_COLUMNS the stats width (default 32 columns, about
// 3 KB per file), PLTEST_BIG_DIR keeps the table in that directory (the
// interop tier reads it with delta-rs).
func TestMillionFiles(t *testing.T) {
	if os.Getenv("PLTEST_BIG") == "" {
		t.Skip("set PLTEST_BIG=1 to write, checkpoint, clean and reopen a 1,000,000-file table (minutes, gigabytes)")
	}
	ctx := context.Background()
	n := bigtest.EnvInt(t, "PLTEST_BIG_FILES", 1_000_000)
	cols := bigtest.EnvInt(t, "PLTEST_BIG_STATS_COLUMNS", 32)
	dir := os.Getenv("PLTEST_BIG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(st, Config{DisableCheckpoints: true, DisableLogCleanup: true})
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec()
	spec.Configuration = map[string]string{PropCheckpointInterval: "100"}
	kept, err := tbl.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const per = 10_000
	for i := 0; i < n; i += per {
		tx := tbl.NewTransaction(kept)
		for j := i; j < min(i+per, n); j++ {
			day := fmt.Sprintf("2026-01-%02d", j%28+1)
			tx.Add(Add{Path: fmt.Sprintf("day=%s/part-%08d-5f0c1b2a-0000-4000-8000-000000000000.c000.zstd.parquet", day, j),
				PartitionValues: map[string]*string{"day": &day}, Size: int64(1 << 20), DataChange: true, Stats: bigStats(j, cols)})
		}
		tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: 0, First: int64(i), Last: int64(min(i+per, n) - 1)})
		res, err := tx.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kept = res.Snapshot
	}
	t.Logf("wrote %d files in %d commits: %v", kept.NumFiles(), kept.Version(), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	info, err := tbl.writeCheckpoint(ctx, kept)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint %d: %d actions, %d bytes: %v", info.Version, info.Size, info.SizeInBytes, time.Since(start).Round(time.Millisecond))
	kept = nil

	// Every commit is 40 days old: cleanup deletes all below the checkpoint.
	old := time.Now().Add(-40 * 24 * time.Hour)
	for v := int64(0); v <= info.Version; v++ {
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(CommitKey(v))), old, old); err != nil {
			t.Fatal(err)
		}
	}
	start = time.Now()
	fresh, err := Open(st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := fresh.CleanupLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(deleted)) != info.Version {
		t.Fatalf("cleanup deleted %d entries, want the %d commits below the checkpoint", len(deleted), info.Version)
	}
	t.Logf("cleanup (load + verify + delete %d commits): %v", len(deleted), time.Since(start).Round(time.Millisecond))

	load := exec.Command(os.Args[0], "-test.run=^TestMillionFilesLoad$", "-test.v")
	load.Env = append(os.Environ(), "PLTEST_BIG_LOAD="+dir)
	out, err := load.CombinedOutput()
	if err != nil {
		t.Fatalf("reopen: %v\n%s", err, out)
	}
	got := bigtest.ReportLine(t, string(out))
	t.Logf("protolake reopen: %s", got)
	if !strings.Contains(got, fmt.Sprintf("files=%d ", n)) {
		t.Errorf("reopened table: %s, want files=%d", got, n)
	}
	if py := os.Getenv("PLTEST_BIG_DELTARS"); py != "" {
		cmd := exec.Command(py, "-c", deltarsLoad, dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("delta-rs: %v\n%s", err, out)
		}
		got := bigtest.ReportLine(t, string(out))
		t.Logf("delta-rs load: %s", got)
		if !strings.Contains(got, fmt.Sprintf("files=%d ", n)) {
			t.Errorf("delta-rs: %s, want files=%d", got, n)
		}
	}
}

// deltarsLoad loads a table with delta-rs and prints the same report line
// (peak RSS from VmHWM, as bigtest.PeakRSSMiB).
const deltarsLoad = `
import re, sys, time
from deltalake import DeltaTable
t = time.time()
dt = DeltaTable(sys.argv[1])
n = len(dt.file_uris())
hwm = int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1))
print("report: files=%d version=%d seconds=%.2f maxrss_mb=%d" % (n, dt.version(), time.time() - t, hwm // 1024))
`

// TestMillionFilesLoad is the reopen of TestMillionFiles, run in a process
// of its own so that its peak RSS is the load's.
func TestMillionFilesLoad(t *testing.T) {
	dir := os.Getenv("PLTEST_BIG_LOAD")
	if dir == "" {
		t.Skip("run by TestMillionFiles")
	}
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := LoadSnapshot(context.Background(), st, Latest, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	fmt.Printf("report: files=%d version=%d checkpoint=%d seconds=%.2f maxrss_mb=%d\n", s.NumFiles(), s.Version(), s.CheckpointVersion(), d.Seconds(), bigtest.PeakRSSMiB(t))
}
