package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/local"
)

// TestDemo runs the whole demo (kfake, gRPC service, load generator,
// streaming writer) for a fixed number of impressions and then reads the
// table it wrote with DuckDB over the snapshot's files: every Kafka record
// exactly once, in day partitions.
func TestDemo(t *testing.T) {
	lake := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"demo", "--messages", "1500", "--rate", "0", "--lake", lake, "--commit-interval", "300ms", "--partitions", "3"}, &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"protolake demo summary", "rows in the Delta table      1500", "delta_scan('" + filepath.Join(lake, "ad_impressions") + "')", "spark.read.format(\"delta\")"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	dir := filepath.Join(lake, "ad_impressions")
	store, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Metadata().PartitionColumns; len(got) != 1 || got[0] != "event_time_day" {
		t.Errorf("partition columns %v, want [event_time_day]", got)
	}
	var paths []string
	days := map[string]bool{}
	for _, f := range snap.Files() {
		paths = append(paths, filepath.Join(dir, filepath.FromSlash(f.Path)))
		if d := f.PartitionValues["event_time_day"]; d != nil {
			days[*d] = true
		}
	}
	if len(days) == 0 {
		t.Fatal("no file has an event_time_day partition value")
	}
	var listed bytes.Buffer
	if err := run(ctx, []string{"inspect", dir, "--files"}, &listed, io.Discard); err != nil {
		t.Fatalf("inspect --files: %v", err)
	}
	sort.Strings(paths)
	if got := strings.Fields(listed.String()); strings.Join(got, "\n") != strings.Join(paths, "\n") {
		t.Errorf("inspect --files printed\n%s\nwant the snapshot's files\n%s", strings.Join(got, "\n"), strings.Join(paths, "\n"))
	}
	db := ducktest.Open(t)
	src := strings.TrimSuffix(ducktest.ReadParquet(paths...), ")") + ", hive_partitioning=true)"
	got := ducktest.Rows(t, db, `SELECT count(*), count(DISTINCT (_kafka.partition, _kafka.offset)), count(DISTINCT impression_id), min(_kafka.offset),
		count(*) FILTER (WHERE CAST(epoch_us(event_time) // 86400000000 AS INTEGER) <> CAST(epoch(CAST(event_time_day AS DATE)) // 86400 AS INTEGER))
		FROM `+src)
	if want := []string{"1500", "1500", "1500", "0", "0"}; strings.Join(got[0], ",") != strings.Join(want, ",") {
		t.Fatalf("DuckDB over the snapshot: count, distinct (partition, offset), distinct ids, min offset, rows in the wrong day partition = %v, want %v", got[0], want)
	}
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--duration", "0"},
		{"demo", "--partitions", "0", "--messages", "1"},
		{"demo", "extra"},
		{"demo", "--bogus"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

// TestDemoRegistry runs the demo in registry mode: the service frames each
// impression as a registry serializer does, the writer resolves the schema
// id through the in-process registry; every record lands (no dead letters)
// and the table carries the registry lineage.
func TestDemoRegistry(t *testing.T) {
	lake := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"demo", "--registry", "--messages", "500", "--rate", "0", "--lake", lake, "--commit-interval", "300ms", "--partitions", "2"}, &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"schema registry", "subject ads.click.stream-value version 1, schema id 1", "rows in the Delta table      500 (dead letters: 0)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var hist bytes.Buffer
	if err := run(ctx, []string{"history", filepath.Join(lake, "ad_impressions")}, &hist, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hist.String(), "ads.click.stream-value/1") {
		t.Errorf("history lacks the registry version:\n%s", hist.String())
	}
}
