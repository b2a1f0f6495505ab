package commitlog

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/internal/fixture"
	"github.com/protolake/protolake/storage/local"
)

// TestCheckpointSchemaMatchesSpark compares the Parquet schema of our
// checkpoints with the one Spark (Delta 3) wrote in the shared tables.
func TestCheckpointSchemaMatchesSpark(t *testing.T) {
	path := filepath.Join(sharedTables, "spark-checkpoint", "_delta_log", "00000000000000000010.checkpoint.parquet")
	data, err := os.ReadFile(path)
	if err != nil {
		fixture.Missing(t, err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	want := pf.Schema().String()
	got := CheckpointSchema().String()
	if got != want {
		t.Errorf("checkpoint schema differs from Spark's\n got: %s\nwant: %s", got, want)
	}
	// And the file we write carries exactly that schema.
	tbl, _ := newTestTable(t, Config{DisableCheckpoints: true})
	commitAdds(t, tbl, "a", "b")
	s := mustSnapshot(t, tbl)
	of, _, _ := encodeCheckpointFile(t, s)
	if of.Schema().String() != want {
		t.Errorf("written checkpoint schema differs from Spark's\n got: %s\nwant: %s", of.Schema(), want)
	}
}

// snapshotFacts is a comparable summary of a snapshot.
func snapshotFacts(t *testing.T, s *Snapshot) string {
	t.Helper()
	f := factsOf(t, s)
	type full struct {
		Facts      expectedFacts
		Files      []Add
		Tombstones []string
		Txns       map[string]int64
		Protocol   Protocol
		Metadata   Metadata
	}
	var ts []string
	for _, r := range s.Tombstones() {
		ts = append(ts, r.Path)
	}
	files := s.Files()
	for i := range files {
		files[i].DataChange = false // checkpoints store dataChange=false
	}
	b, err := json.Marshal(full{f, files, ts, s.Txns(), s.Protocol(), s.Metadata()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAutomaticCheckpointRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec() // checkpoint interval 5
	if _, err := tbl.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var results []CommitResult
	for i := 0; i < 12; i++ {
		snap := mustSnapshot(t, tbl)
		tx := tbl.NewTransaction(snap)
		tx.Add(testAdd("f" + string(rune('a'+i)) + ".parquet"))
		tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: 0, First: int64(i * 10), Last: int64(i*10 + 9)})
		if i%3 == 2 { // remove an earlier file now and then
			tx.Remove(Remove{Path: "day=2026-01-01/f" + string(rune('a'+i-2)) + ".parquet", DataChange: true})
		}
		res, err := tx.Commit(ctx)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		results = append(results, res)
	}
	for _, r := range results {
		if want := r.Version%5 == 0; r.Checkpointed != want || r.CheckpointErr != nil {
			t.Errorf("version %d: Checkpointed = %v (%v), want %v", r.Version, r.Checkpointed, r.CheckpointErr, want)
		}
	}
	lc, err := ReadLastCheckpoint(ctx, st)
	if err != nil || lc.Version != 10 || lc.NumOfAddFiles == nil {
		t.Fatalf("_last_checkpoint = %+v, %v; want version 10", lc, err)
	}
	fromCP := mustSnapshot(t, tbl)
	if fromCP.CheckpointVersion() != 10 {
		t.Errorf("snapshot loaded from checkpoint %d, want 10", fromCP.CheckpointVersion())
	}
	if *lc.NumOfAddFiles != int64(mustSnapshotAt(t, tbl, 10).NumFiles()) {
		t.Errorf("numOfAddFiles = %d, want %d", *lc.NumOfAddFiles, mustSnapshotAt(t, tbl, 10).NumFiles())
	}
	// Replay the same table without checkpoints: the same state.
	noCP := replayWithoutCheckpoints(t, dir)
	if a, b := snapshotFacts(t, fromCP), snapshotFacts(t, noCP); a != b {
		t.Errorf("snapshot via checkpoint differs from full replay\n cp: %s\nall: %s", a, b)
	}

	// DuckDB reads our checkpoint as plain Parquet and finds the same files.
	db := ducktest.Open(t)
	cp := filepath.Join(dir, "_delta_log", "00000000000000000010.checkpoint.parquet")
	rows := ducktest.Rows(t, db, "SELECT add.path FROM "+ducktest.ReadParquet(cp)+" WHERE add IS NOT NULL ORDER BY 1")
	var got []string
	for _, r := range rows {
		got = append(got, r[0])
	}
	var want []string
	for _, f := range mustSnapshotAt(t, tbl, 10).Files() {
		want = append(want, f.Path)
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DuckDB add paths = %v, want %v", got, want)
	}
	rows = ducktest.Rows(t, db, "SELECT txn.appId, txn.version, protocol.minWriterVersion IS NULL FROM "+ducktest.ReadParquet(cp)+" WHERE txn IS NOT NULL")
	if len(rows) != 1 || rows[0][0] != KafkaAppID("g", "t", 0) || rows[0][1] != "99" {
		t.Errorf("DuckDB txn rows = %v, want one row for the Kafka partition at offset 99", rows)
	}
	rows = ducktest.Rows(t, db, "SELECT protocol.minReaderVersion, protocol.minWriterVersion, metaData.partitionColumns FROM "+ducktest.ReadParquet(cp)+" WHERE protocol IS NOT NULL OR metaData IS NOT NULL ORDER BY 1")
	if len(rows) != 2 || rows[0][0] != "1" || rows[0][1] != "2" || !strings.Contains(rows[1][2], "day") {
		t.Errorf("DuckDB protocol/metaData rows = %v", rows)
	}
}

func mustSnapshotAt(t *testing.T, tbl *Table, v int64) *Snapshot {
	t.Helper()
	s, err := tbl.SnapshotAt(context.Background(), v)
	if err != nil {
		t.Fatalf("SnapshotAt(%d): %v", v, err)
	}
	return s
}

// noCheckpointReader hides checkpoints from the listing.
type noCheckpointReader struct{ Reader }

func (r noCheckpointReader) List(ctx context.Context, prefix string) ([]storageObject, error) {
	objs, err := r.Reader.List(ctx, prefix)
	var out []storageObject
	for _, o := range objs {
		if !strings.Contains(o.Key, ".checkpoint.") {
			out = append(out, o)
		}
	}
	return out, err
}

func replayWithoutCheckpoints(t *testing.T, dir string) *Snapshot {
	t.Helper()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSnapshot(context.Background(), noCheckpointReader{st}, Latest, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.CheckpointVersion() != -1 {
		t.Fatalf("replay used checkpoint %d", s.CheckpointVersion())
	}
	return s
}

// TestCheckpointRoundTripSharedTables writes our checkpoint for every shared
// table at every EXPECTED.json version and reads it back: the same facts,
// including null partition values and Spark's escaped paths.
func TestCheckpointRoundTripSharedTables(t *testing.T) {
	all := loadExpected(t)
	ctx := context.Background()
	for table, versions := range all {
		store, err := local.New(filepath.Join(sharedTables, table))
		if err != nil {
			t.Fatal(err)
		}
		for label := range versions {
			t.Run(table+"/"+label, func(t *testing.T) {
				v := Latest
				if label != "latest" {
					n, _ := strconv.ParseInt(strings.TrimPrefix(label, "v"), 10, 64)
					v = n
				}
				s, err := LoadSnapshot(ctx, store, v, LoadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				data, info, err := EncodeCheckpoint(s, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				if info.NumOfAddFiles != int64(s.NumFiles()) {
					t.Errorf("numOfAddFiles = %d, want %d", info.NumOfAddFiles, s.NumFiles())
				}
				back := checkpointSnapshot(t, data)
				back.version = s.version
				back.checkpointVersion = s.checkpointVersion
				if got, want := snapshotFacts(t, back), snapshotFacts(t, s); got != want {
					t.Errorf("checkpoint round trip differs\n got: %s\nwant: %s", got, want)
				}
			})
		}
	}
}

// encodeCheckpointFile encodes s as a checkpoint and opens it as Parquet.
func encodeCheckpointFile(t *testing.T, s *Snapshot) (*parquet.File, []byte, CheckpointInfo) {
	t.Helper()
	data, info, err := EncodeCheckpoint(s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pf, data, info
}

// checkpointSnapshot parses a checkpoint and applies its actions to an empty
// snapshot.
func checkpointSnapshot(t *testing.T, data []byte) *Snapshot {
	t.Helper()
	actions, err := ParseCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	s := newSnapshot()
	for _, a := range actions {
		s.apply(a)
	}
	return s
}
