package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/internal/fixture"
	"github.com/protolake/protolake/storage/local"
)

// copyTable copies a shared table into a temp dir (the shared tables are
// never modified).
func copyTable(t *testing.T, name string) string {
	t.Helper()
	return fixture.CopyDir(t, filepath.Join(sharedTables, name))
}

func latestSnapshot(t *testing.T, dir string) *commitlog.Snapshot {
	t.Helper()
	_, snap := openLocalTable(t, dir)
	return snap
}

// openLocalTable opens the table in dir and loads its latest snapshot.
func openLocalTable(t *testing.T, dir string) (*commitlog.Table, *commitlog.Snapshot) {
	t.Helper()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(st, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tbl, snap
}

// duckRows reads the snapshot's files with DuckDB, sorted.
func duckRows(t *testing.T, dir string, snap *commitlog.Snapshot) []string {
	t.Helper()
	var files []string
	for _, f := range snap.Files() {
		p, _ := url.PathUnescape(f.Path)
		files = append(files, filepath.Join(dir, filepath.FromSlash(p)))
	}
	db := ducktest.Open(t)
	var out []string
	for _, r := range ducktest.Rows(t, db, "SELECT CAST(x AS VARCHAR) FROM (SELECT * FROM "+ducktest.ReadParquet(files...)+") AS x") {
		out = append(out, r[0])
	}
	sort.Strings(out)
	return out
}

func TestCompactCommand(t *testing.T) {
	dir := copyTable(t, "deltars-simple_table_with_checkpoint")
	before := latestSnapshot(t, dir)
	want := duckRows(t, dir, before)

	stdout, stderr, code := runCLI(t, "compact", dir, "--min-files", "2", "--dry-run")
	if code != 0 || !strings.Contains(stdout, "dry run: plan at version 10: 1 partitions, 11 files") || !strings.Contains(stdout, "new file 1 from 11 files") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if v := latestSnapshot(t, dir).Version(); v != 10 {
		t.Fatalf("dry run committed version %d", v)
	}

	stdout, stderr, code = runCLI(t, "compact", "--min-files=2", "--target-size", "1MiB", dir)
	if code != 0 || !strings.Contains(stdout, "compacted 11 files") || !strings.Contains(stdout, "version 11, 11 → 1 files") {
		t.Fatalf("compact: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "compaction progress") {
		t.Errorf("no progress logged on a non-terminal stderr:\n%s", stderr)
	}
	after := latestSnapshot(t, dir)
	if after.NumFiles() != 1 {
		t.Errorf("%d files after, want 1", after.NumFiles())
	}
	got := duckRows(t, dir, after)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows changed:\n got %v\nwant %v", got, want)
	}

	// Nothing left: exit 0, nothing committed.
	if _, _, code := runCLI(t, "compact", dir, "--min-files", "2"); code != 0 {
		t.Errorf("second compact: exit %d", code)
	}
	if v := latestSnapshot(t, dir).Version(); v != 11 {
		t.Errorf("second compact committed (version %d)", v)
	}
}

// TestCompactCommandPartitionFails: a corrupt data file fails its
// partition: exit status 1 and the partition named on stderr.
func TestCompactCommandPartitionFails(t *testing.T) {
	dir := copyTable(t, "deltars-simple_table_with_checkpoint")
	snap := latestSnapshot(t, dir)
	bad := snap.Files()[3].Path
	if err := os.WriteFile(filepath.Join(dir, bad), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, "compact", dir, "--min-files", "2")
	if code != 1 || !strings.Contains(stderr, "1 of 1 partitions failed (nothing was committed):") || !strings.Contains(stderr, bad) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if v := latestSnapshot(t, dir).Version(); v != snap.Version() {
		t.Errorf("failed compaction committed version %d", v)
	}
	// No leftover output files.
	matches, _ := filepath.Glob(filepath.Join(dir, "*.zstd.parquet"))
	if len(matches) != 0 {
		t.Errorf("uncommitted files left behind: %v", matches)
	}
}
