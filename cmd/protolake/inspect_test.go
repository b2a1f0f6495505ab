package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/fixture"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
)

func init() {
	// Other tests of this package may define -update too; define it once.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const sharedTables = "../../../shared/delta-tables"

// TestInspectGolden renders tables written by Spark and delta-rs.
func TestInspectGolden(t *testing.T) {
	if _, err := os.Stat(sharedTables); err != nil {
		fixture.Missing(t, err)
	}
	tests := []struct {
		golden string
		args   []string
	}{
		{"partition-values.golden", []string{"spark-data-reader-partition-values"}},
		{"deltars-0.2.0-v2.golden", []string{"deltars-delta-0.2.0", "--version", "2"}},
		{"deltars-0.2.0.json.golden", []string{"--json", "deltars-delta-0.2.0"}},
		{"inserts-deletes.golden", []string{"spark-basic-with-inserts-deletes-checkpoint"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			args := append([]string{"inspect"}, tc.args...)
			for i, a := range args {
				if i > 0 && !strings.HasPrefix(a, "-") && (i == 0 || !strings.HasPrefix(args[i-1], "--version")) {
					args[i] = filepath.Join(sharedTables, a)
				}
			}
			var out, errb bytes.Buffer
			if err := run(context.Background(), args, &out, &errb); err != nil {
				t.Fatalf("run %v: %v\n%s", args, err, errb.String())
			}
			got := strings.ReplaceAll(out.String(), sharedTables, "$TABLES")
			path := filepath.Join("testdata", "inspect", tc.golden)
			if updateGolden() {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update after checking):\n%s", path, got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestInspectProtolakeTable inspects a table written through the commit log:
// proto pin and its history, watermarks, files per partition.
func TestInspectProtolakeTable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tbl, err := commitlog.Open(st, commitlog.Config{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	schema := `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"day","type":"string","nullable":true,"metadata":{}}]}`
	snap, err := tbl.Create(ctx, commitlog.TableSpec{
		SchemaString:     schema,
		PartitionColumns: []string{"day"},
		Proto:            commitlog.ProtoPin{Message: "ads.v1.Click", Fingerprint: "f1", Version: "v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, day := range []string{"2026-01-01", "2026-01-01", "2026-01-02"} {
		tx := tbl.NewTransaction(snap)
		tx.Add(commitlog.Add{Path: "day=" + day + "/part-" + string(rune('a'+i)) + ".parquet", PartitionValues: map[string]*string{"day": ptr(day)}, Size: 100, DataChange: true, Stats: `{"numRecords":5}`})
		tx.AddKafkaOffsets("g", commitlog.OffsetRange{Topic: "clicks", Partition: 0, First: int64(i * 10), Last: int64(i*10 + 9)})
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if snap, err = tbl.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	md := snap.Metadata()
	md.Configuration = map[string]string{"protolake.proto.message": "ads.v1.Click", "protolake.proto.fingerprint": "f2", "protolake.proto.version": "v2"}
	tx := tbl.NewTransaction(snap)
	tx.UpdateMetadata(md)
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	if err := run(ctx, []string{"inspect", dir, "--json"}, &out, &errb); err != nil {
		t.Fatalf("inspect: %v\n%s", err, errb.String())
	}
	var got struct {
		Version          int64            `json:"version"`
		NumFiles         int              `json:"numFiles"`
		TotalSize        int64            `json:"totalSize"`
		NumRecords       *int64           `json:"numRecords"`
		Txns             map[string]int64 `json:"txns"`
		PartitionColumns []string         `json:"partitionColumns"`
		Protocol         map[string]any   `json:"protocol"`
		Proto            map[string]string
		ProtoHistory     []struct {
			Version int64             `json:"version"`
			Pin     map[string]string `json:"pin"`
		} `json:"protoHistory"`
		Partitions []struct {
			Values   map[string]string `json:"values"`
			NumFiles int               `json:"numFiles"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("inspect --json output: %v\n%s", err, out.String())
	}
	if got.Version != 4 || got.NumFiles != 3 || got.TotalSize != 300 || got.NumRecords == nil || *got.NumRecords != 15 {
		t.Errorf("version/files/size/records = %d/%d/%d/%v, want 4/3/300/15", got.Version, got.NumFiles, got.TotalSize, got.NumRecords)
	}
	if want := map[string]int64{"protolake:g:clicks:0": 29}; !reflect.DeepEqual(got.Txns, want) {
		t.Errorf("txns = %v, want %v", got.Txns, want)
	}
	if !reflect.DeepEqual(got.PartitionColumns, []string{"day"}) {
		t.Errorf("partitionColumns = %v", got.PartitionColumns)
	}
	if got.Protocol["minReaderVersion"] != 1.0 || got.Protocol["minWriterVersion"] != 2.0 {
		t.Errorf("protocol = %v", got.Protocol)
	}
	if got.Proto["fingerprint"] != "f2" || got.Proto["version"] != "v2" {
		t.Errorf("proto = %v, want fingerprint f2 version v2", got.Proto)
	}
	if len(got.ProtoHistory) != 2 || got.ProtoHistory[0].Version != 0 || got.ProtoHistory[0].Pin["fingerprint"] != "f1" || got.ProtoHistory[1].Version != 4 {
		t.Errorf("protoHistory = %+v, want f1 at 0 then f2 at 4", got.ProtoHistory)
	}
	if len(got.Partitions) != 2 || got.Partitions[0].Values["day"] != "2026-01-01" || got.Partitions[0].NumFiles != 2 {
		t.Errorf("partitions = %+v", got.Partitions)
	}

	// At version 1 the pin is still f1 and only the first file exists.
	out.Reset()
	if err := run(ctx, []string{"inspect", "--version", "1", dir}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"version:            1", "proto fingerprint:  f1", "files:              1 (100 bytes, 5 records)", "protolake:g:clicks:0  9"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestInspectErrors(t *testing.T) {
	ctx := context.Background()
	empty := t.TempDir()
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no table", []string{"inspect"}, true, "exactly one TABLE_URI"},
		{"two tables", []string{"inspect", "a", "b"}, true, "exactly one TABLE_URI"},
		{"bad version", []string{"inspect", "--version", "-5", empty}, true, "--version"},
		{"not a table", []string{"inspect", empty}, false, "no Delta table"},
		{"missing dir", []string{"inspect", filepath.Join(empty, "nope")}, false, "no table directory"},
		{"future version", []string{"inspect", "--version", "99", filepath.Join(sharedTables, "spark-checkpoint")}, false, "not found"},
		{"scheme", []string{"inspect", "gopher://x/y"}, false, "gopher"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(ctx, tc.args, &out, &errb)
			if err == nil {
				t.Fatal("no error")
			}
			var ue usageError
			if errors.As(err, &ue) != tc.usage {
				t.Errorf("usage error = %v, want %v (%v)", !tc.usage, tc.usage, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(empty, "nope")); err == nil {
		t.Error("inspect created the directory it was asked to inspect")
	}
}

// TestInspectS3 inspects a table on an S3 server (gofakes3) by URL.
func TestInspectS3(t *testing.T) {
	ctx := context.Background()
	cfg := s3test.StartGoFakeS3(t)
	cfg.Prefix = "lake/events"
	st, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(st, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Create(ctx, commitlog.TableSpec{SchemaString: `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}}]}`})
	if err != nil {
		t.Fatal(err)
	}
	tx := tbl.NewTransaction(snap)
	tx.Add(commitlog.Add{Path: "part-0.parquet", Size: 42, DataChange: true})
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretAccessKey)
	uri := "s3://" + cfg.Bucket + "/lake/events?endpoint=" + cfg.Endpoint + "&path_style=true&region=" + cfg.Region
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"inspect", "--json", uri}, &out, &errb); err != nil {
		t.Fatalf("inspect %s: %v\n%s", uri, err, errb.String())
	}
	var got struct {
		Version   int64 `json:"version"`
		NumFiles  int   `json:"numFiles"`
		TotalSize int64 `json:"totalSize"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.NumFiles != 1 || got.TotalSize != 42 {
		t.Errorf("got %+v, want version 1 with one 42-byte file", got)
	}
}
