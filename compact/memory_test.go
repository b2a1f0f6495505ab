package compact_test

import (
	"bufio"
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
	"github.com/protolake/protolake/storage/local"
)

// TestCompactMemory measures the peak RSS of compacting one partition of
// PLTEST_BIG_COMPACT_FILES (default 20) input files of
// PLTEST_BIG_COMPACT_ROWS adtrack rows each (default 1,000,000: about
// 100 MB) with a 1 GiB target size, in a process of its own, and reports it
// beside the README's bound (target size + 64 MiB). The inputs are copies
// of one written file. It runs with PLTEST_BIG_COMPACT=1 (minutes,
// gigabytes of disk).
func TestCompactMemory(t *testing.T) {
	if os.Getenv("PLTEST_BIG_COMPACT") == "" {
		t.Skip("set PLTEST_BIG_COMPACT=1 to measure the peak RSS of compacting 20 x 100 MB files into 1 GiB")
	}
	files := envInt(t, "PLTEST_BIG_COMPACT_FILES", 20)
	rows := envInt(t, "PLTEST_BIG_COMPACT_ROWS", 1_000_000)
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
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	var report string
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "report: "); ok {
			report = rest
		}
	}
	if report == "" {
		t.Fatalf("no report:\n%s", out)
	}
	t.Logf("compaction of %d x %d bytes, target 1 GiB: %s (README bound: target + 64 MiB = %d MiB)", files, first.Size, report, 1024+64)
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
	fmt.Printf("report: inputs=%d outputs=%d out_bytes=%d seconds=%.1f maxrss_mb=%d\n", p.RemovedFiles, p.AddedFiles, p.AddedBytes, time.Since(start).Seconds(), peakRSSMiB(t))
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
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

// peakRSSMiB is the process's peak resident set size (VmHWM). Not
// getrusage's maxrss: Linux carries that across fork and exec, so a child
// of a big parent reports the parent's size.
func peakRSSMiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
