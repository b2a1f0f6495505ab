package compact_test

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/internal/bigtest"
	"github.com/protolake/protolake/storage/local"
)

// TestCompactMemory measures the peak RSS of compacting one partition of
// PLTEST_BIG_COMPACT_FILES (default 20) input files of
// PLTEST_BIG_COMPACT_ROWS adtrack rows each (default 1,000,000: about
// 100 MB) with a 1 GiB target size, in a process of its own, and fails when
// it is over the README's bound (target size + 64 MiB). The inputs are
// copies of one written file. It runs with PLTEST_BIG_COMPACT=1 (minutes,
// gigabytes of disk).
func TestCompactMemory(t *testing.T) {
	if os.Getenv("PLTEST_BIG_COMPACT") == "" {
		t.Skip("set PLTEST_BIG_COMPACT=1 to measure the peak RSS of compacting 20 x 100 MB files into 1 GiB")
	}
	files := bigtest.EnvInt(t, "PLTEST_BIG_COMPACT_FILES", 20)
	rows := bigtest.EnvInt(t, "PLTEST_BIG_COMPACT_ROWS", 1_000_000)
	ctx := context.Background()
	tt := newTestTable(t)
	start := time.Now()
	tt.appendBatch(t, rows, 1)
	snap, err := tt.tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := snap.Files()[0]
	t.Logf("wrote one input of %d rows, %d bytes: %v", rows, first.Size, time.Since(start).Round(time.Millisecond))
	src, _ := url.PathUnescape(first.Path)
	tx := tt.tbl.NewTransaction(snap)
	for i := 1; i < files; i++ {
		a := first
		dir, name := filepath.Split(src)
		p := dir + fmt.Sprintf("copy%02d-", i) + name
		if err := copyFile(filepath.Join(tt.dir, src), filepath.Join(tt.dir, p)); err != nil {
			t.Fatal(err)
		}
		a.Path = (&url.URL{Path: p}).EscapedPath()
		tx.Add(a)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestCompactMemoryChild$", "-test.v")
	child.Env = append(os.Environ(), "PLTEST_COMPACT_DIR="+tt.dir)
	out, err := child.CombinedOutput()
	if err != nil {
		t.Fatalf("compaction: %v\n%s", err, out)
	}
	report := bigtest.ReportLine(t, string(out))
	const bound = 1024 + 64 // MiB: the README's target size + 64 MiB
	t.Logf("compaction of %d x %d bytes, target 1 GiB: %s (README bound: target + 64 MiB = %d MiB)", files, first.Size, report, bound)
	var rss int64 = -1
	for _, f := range strings.Fields(report) {
		if v, ok := strings.CutPrefix(f, "maxrss_mb="); ok {
			rss, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if rss <= 0 {
		t.Fatalf("no maxrss_mb in the report %q", report)
	}
	if rss > bound {
		t.Errorf("compaction peaked at %d MiB RSS, over the README's bound of %d MiB", rss, bound)
	}
	after, err := tt.tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := after.NumRecords(); !ok || n != int64(rows*files) {
		t.Errorf("after compaction: %d rows (known %v), want %d", n, ok, rows*files)
	}
}

// TestCompactMemoryChild is the compaction of TestCompactMemory, in a
// process of its own so that its peak RSS is the compaction's.
func TestCompactMemoryChild(t *testing.T) {
	dir := os.Getenv("PLTEST_COMPACT_DIR")
	if dir == "" {
		t.Skip("run by TestCompactMemory")
	}
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(st, commitlog.Config{DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := compact.Run(context.Background(), tbl, compact.Config{TargetSize: 1 << 30, MinFiles: 2})
	if err != nil || res.Err() != nil || len(res.Partitions) != 1 {
		t.Fatalf("compact: %v %v %+v", err, res.Err(), res)
	}
	p := res.Partitions[0]
	fmt.Printf("report: inputs=%d outputs=%d out_bytes=%d seconds=%.1f maxrss_mb=%d\n", p.RemovedFiles, p.AddedFiles, p.AddedBytes, time.Since(start).Seconds(), bigtest.PeakRSSMiB(t))
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
