package compact_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/internal/adtrack"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/internal/fixture"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/writer"
)

// testTable is a local adtrack table partitioned by day(event_time).
type testTable struct {
	dir   string
	tbl   *commitlog.Table
	st    *schema.Table
	pin   commitlog.ProtoPin
	w     *writer.Writer
	next  int
	group string
}

func newTestTable(t testing.TB) *testTable {
	t.Helper()
	dir := t.TempDir()
	store, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	md := (&adtrackpb.AdImpression{}).ProtoReflect().Descriptor()
	st, err := schema.Derive(md, schema.Options{Partitions: []string{"day(event_time)"}})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := schema.Fingerprint(md)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(store, commitlog.Config{DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	pin := commitlog.ProtoPin{Message: string(md.FullName()), Fingerprint: fp, Version: "v1"}
	if _, err := tbl.Create(context.Background(), commitlog.TableSpec{SchemaString: st.SchemaString(), PartitionColumns: st.PartitionColumns, Proto: pin}); err != nil {
		t.Fatal(err)
	}
	w, err := writer.NewTable(writer.Config{}, st, store)
	if err != nil {
		t.Fatal(err)
	}
	return &testTable{dir: dir, tbl: tbl, st: st, pin: pin, w: w, group: "g"}
}

// appendBatch writes n messages spread over `days` days (one file per day)
// and commits them as one streaming update with Kafka offsets.
func (tt *testTable) appendBatch(t testing.TB, n, days int) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(uint64(tt.next), 7))
	first := tt.next
	for i := 0; i < n; i++ {
		m := adtrack.Impression(r, tt.next, adtrack.CorpusBase, time.Second)
		m.EventTime = timestamppb.New(adtrack.CorpusBase.Add(time.Duration(tt.next%days)*24*time.Hour + time.Duration(tt.next)*time.Millisecond))
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := tt.w.Write(ctx, b, writer.Kafka{Topic: "t", Partition: 0, Offset: int64(tt.next), Timestamp: m.EventTime.AsTime()}); err != nil {
			t.Fatal(err)
		}
		tt.next++
	}
	files, err := tt.w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tt.tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx := tt.tbl.NewTransaction(snap)
	for _, f := range files {
		stats, err := f.Stats.JSON()
		if err != nil {
			t.Fatal(err)
		}
		tx.Add(commitlog.Add{Path: (&url.URL{Path: f.Path}).EscapedPath(), PartitionValues: f.PartitionValues, Size: f.Size,
			ModificationTime: f.ModificationTime.UnixMilli(), DataChange: true, Stats: stats,
			Tags: map[string]string{commitlog.TagProtoFingerprint: tt.pin.Fingerprint}})
	}
	tx.SetOperation(commitlog.OpStreamingUpdate, nil)
	tx.AddKafkaOffsets(tt.group, commitlog.OffsetRange{Topic: "t", Partition: 0, First: int64(first), Last: int64(tt.next - 1)})
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// localFiles returns the local paths of the active files of snap.
func localFiles(dir string, snap *commitlog.Snapshot) []string {
	var out []string
	for _, f := range snap.Files() {
		p, _ := url.PathUnescape(f.Path)
		out = append(out, filepath.Join(dir, filepath.FromSlash(p)))
	}
	return out
}

// tableRows reads every row of the snapshot with DuckDB, each rendered as
// its partition values plus the whole row as a DuckDB struct, sorted: a
// multiset that also checks rows stayed in their partition.
func tableRows(t testing.TB, db *sql.DB, dir string, snap *commitlog.Snapshot) []string {
	t.Helper()
	byPart := map[string][]string{}
	for _, f := range snap.Files() {
		k, _ := json.Marshal(f.PartitionValues)
		p, _ := url.PathUnescape(f.Path)
		byPart[string(k)] = append(byPart[string(k)], filepath.Join(dir, filepath.FromSlash(p)))
	}
	var out []string
	for part, files := range byPart {
		rows := ducktest.Rows(t, db, "SELECT CAST(x AS VARCHAR) FROM (SELECT * FROM read_parquet(["+quoteList(files)+"])) AS x")
		for _, r := range rows {
			out = append(out, part+" "+r[0])
		}
	}
	sort.Strings(out)
	return out
}

func quoteList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = "'" + strings.ReplaceAll(p, "'", "''") + "'"
	}
	return strings.Join(q, ", ")
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func equalMultisets(t testing.TB, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: row multisets differ at sorted row %d:\n got %s\nwant %s", what, i, got[i], want[i])
		}
	}
}

// cloneTable copies a local table directory and opens the copy.
func cloneTable(t testing.TB, dir string) *commitlog.Table {
	t.Helper()
	store, err := local.New(fixture.CopyDir(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(store, commitlog.Config{DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func fmtRows(rows [][]string) string { return fmt.Sprint(rows) }
