package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
)

// TestMaintenanceS3 uploads a delta-rs table to S3 (gofakes3) and runs
// compact, history, vacuum --dry-run and checkpoint on its s3:// URL; the
// compacted file, downloaded, reads back with DuckDB as the same rows.
func TestMaintenanceS3(t *testing.T) {
	ctx := context.Background()
	src := copyTable(t, "deltars-simple_table_with_checkpoint")
	want := duckRows(t, src, latestSnapshot(t, src))
	cfg := s3test.StartGoFakeS3(t)
	cfg.Prefix = "lake/simple"
	st, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return st.Put(ctx, filepath.ToSlash(rel), f)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretAccessKey)
	uri := "s3://" + cfg.Bucket + "/lake/simple?endpoint=" + cfg.Endpoint + "&path_style=true&region=" + cfg.Region

	for _, args := range [][]string{
		{"compact", uri, "--min-files", "2"},
		{"history", uri, "--limit", "1"},
		{"vacuum", uri, "--dry-run"},
		{"checkpoint", uri},
	} {
		stdout, stderr, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args[0], code, stdout, stderr)
		}
		if args[0] == "history" && !strings.Contains(stdout, "OPTIMIZE") {
			t.Errorf("history after compact:\n%s", stdout)
		}
	}

	tbl, err := commitlog.Open(st, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.NumFiles() != 1 || snap.CheckpointVersion() != snap.Version() {
		t.Fatalf("after: %d files, checkpoint %d at version %d", snap.NumFiles(), snap.CheckpointVersion(), snap.Version())
	}
	f := snap.Files()[0]
	rc, err := st.Get(ctx, f.Path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "f.parquet")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	db := ducktest.Open(t)
	var got []string
	for _, r := range ducktest.Rows(t, db, "SELECT CAST(x AS VARCHAR) FROM (SELECT * FROM read_parquet(?)) AS x ORDER BY 1", local) {
		got = append(got, r[0])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows on S3 after compaction:\n got %v\nwant %v", got, want)
	}
}
