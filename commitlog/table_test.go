package commitlog

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/protolake/protolake/storage/mem"
)

const testSchema = `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"day","type":"string","nullable":true,"metadata":{}}]}`

func strp(s string) *string { return &s }

func testSpec() TableSpec {
	return TableSpec{
		SchemaString:     testSchema,
		PartitionColumns: []string{"day"},
		Configuration:    map[string]string{"delta.checkpointInterval": "5"},
		Proto:            ProtoPin{Message: "test.v1.Event", Fingerprint: "abc123", Version: "v1", DescriptorSet: []byte("descriptors")},
	}
}

func newTestTable(t *testing.T, cfg Config) (*Table, *mem.Store) {
	t.Helper()
	st := mem.New()
	tbl, err := Open(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(context.Background(), testSpec()); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return tbl, st
}

func testAdd(name string) Add {
	return Add{
		Path:            "day=2026-01-01/" + name,
		PartitionValues: map[string]*string{"day": strp("2026-01-01")},
		Size:            100,
		DataChange:      true,
		Stats:           `{"numRecords":10}`,
	}
}

func mustSnapshot(t *testing.T, tbl *Table) *Snapshot {
	t.Helper()
	s, err := tbl.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return s
}

func commitAdds(t *testing.T, tbl *Table, names ...string) CommitResult {
	t.Helper()
	tx := tbl.NewTransaction(mustSnapshot(t, tbl))
	for _, n := range names {
		tx.Add(testAdd(n))
	}
	res, err := tx.Commit(context.Background())
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return res
}

func TestCreate(t *testing.T) {
	ctx := context.Background()
	tbl, _ := newTestTable(t, Config{})
	s := mustSnapshot(t, tbl)
	if s.Version() != 0 {
		t.Errorf("version = %d, want 0", s.Version())
	}
	if p := s.Protocol(); p.MinReaderVersion != 1 || p.MinWriterVersion != 2 {
		t.Errorf("protocol = %+v, want 1/2", p)
	}
	pin := PinOf(s.Metadata())
	if pin.Message != "test.v1.Event" || pin.Fingerprint != "abc123" || pin.Version != "v1" {
		t.Errorf("pin = %+v", pin)
	}
	if got, err := tbl.Descriptors(ctx, "abc123"); err != nil || string(got) != "descriptors" {
		t.Errorf("Descriptors = %q, %v", got, err)
	}
	if err := tbl.ArchiveDescriptors(ctx, "def456", []byte("later")); err != nil {
		t.Fatal(err)
	}
	ads, err := tbl.ArchivedDescriptors(ctx)
	if err != nil || len(ads) != 2 || ads[0].Fingerprint != "abc123" || ads[1].Fingerprint != "def456" || ads[1].Archived.Before(ads[0].Archived) {
		t.Errorf("ArchivedDescriptors = %+v, %v; want abc123 then def456", ads, err)
	}
	if ads, err := tbl2Empty(t).ArchivedDescriptors(ctx); err != nil || len(ads) != 0 {
		t.Errorf("ArchivedDescriptors of an empty store = %+v, %v", ads, err)
	}
	if _, err := tbl.Create(ctx, testSpec()); !errors.Is(err, ErrTableExists) {
		t.Errorf("second Create error = %v, want ErrTableExists", err)
	}
	bad := testSpec()
	bad.PartitionColumns = []string{"nope"}
	if _, err := Open(mem.New(), Config{}); err != nil {
		t.Fatal(err)
	}
	tbl2, _ := Open(mem.New(), Config{})
	if _, err := tbl2.Create(ctx, bad); err == nil {
		t.Error("Create with an unknown partition column succeeded")
	}
}

func TestCommitAppendsAndTxn(t *testing.T) {
	ctx := context.Background()
	tbl, _ := newTestTable(t, Config{})
	commitAdds(t, tbl, "a.parquet")
	tx := tbl.NewTransaction(mustSnapshot(t, tbl))
	tx.Add(testAdd("b.parquet"))
	tx.AddKafkaOffsets("g", OffsetRange{Topic: "clicks", Partition: 3, First: 0, Last: 99})
	tx.SetOperation(OpStreamingUpdate, nil)
	res, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 {
		t.Errorf("version = %d, want 2", res.Version)
	}
	s := mustSnapshot(t, tbl)
	if s.NumFiles() != 2 {
		t.Errorf("NumFiles = %d, want 2", s.NumFiles())
	}
	if v, ok := s.TxnVersion(KafkaAppID("g", "clicks", 3)); !ok || v != 99 {
		t.Errorf("txn = %d, %v; want 99", v, ok)
	}
	for _, f := range s.Files() {
		if f.Tags[TagProtoFingerprint] != "abc123" {
			t.Errorf("%s tags = %v, want the fingerprint", f.Path, f.Tags)
		}
	}
	// The same offsets again, from a fresh snapshot: already committed.
	tx = tbl.NewTransaction(s)
	tx.Add(testAdd("c.parquet"))
	tx.AddKafkaOffsets("g", OffsetRange{Topic: "clicks", Partition: 3, First: 50, Last: 149})
	if _, err := tx.Commit(ctx); !errors.Is(err, ErrFenced) {
		t.Errorf("overlapping offsets: error = %v, want ErrFenced", err)
	}
}

// TestConflictRules: two transactions read the same snapshot; the first
// commits, then the second meets it as the winner.
func TestConflictRules(t *testing.T) {
	type stage func(tx *Transaction)
	add := func(n string) stage { return func(tx *Transaction) { tx.Add(testAdd(n)) } }
	remove := func(n string, dataChange bool) stage {
		return func(tx *Transaction) {
			tx.Remove(Remove{Path: "day=2026-01-01/" + n, DataChange: dataChange})
		}
	}
	txn := func(part int32, first, last int64) stage {
		return func(tx *Transaction) {
			tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: part, First: first, Last: last})
		}
	}
	meta := func(key string) stage {
		return func(tx *Transaction) {
			md := tx.read.Metadata()
			conf := map[string]string{}
			for k, v := range md.Configuration {
				conf[k] = v
			}
			conf[key] = "x"
			md.Configuration = conf
			tx.UpdateMetadata(md)
		}
	}
	tests := []struct {
		name    string
		winner  []stage
		loser   []stage
		wantErr error
		wantVer int64
	}{
		{"blind vs blind", []stage{add("w")}, []stage{add("l")}, nil, 3},
		{"blind vs compaction", []stage{remove("x", false), remove("y", false), add("xy")}, []stage{add("l")}, nil, 3},
		{"compaction vs blind", []stage{add("w")}, []stage{remove("x", false), remove("y", false), add("xy")}, nil, 3},
		{"compaction vs compaction of other files", []stage{remove("x", false), add("x2")}, []stage{remove("y", false), add("y2")}, nil, 3},
		{"compaction vs compaction of same file", []stage{remove("x", false), add("x2")}, []stage{remove("x", false), remove("y", false), add("xy")}, ErrConflict, 0},
		{"compaction vs delete", []stage{remove("y", true)}, []stage{remove("y", false), add("y2")}, ErrConflict, 0},
		{"same appId", []stage{add("w"), txn(0, 0, 10)}, []stage{add("l"), txn(0, 5, 20)}, ErrFenced, 0},
		{"same appId, later offsets", []stage{add("w"), txn(0, 0, 10)}, []stage{add("l"), txn(0, 11, 20)}, nil, 3},
		{"different appIds", []stage{add("w"), txn(1, 0, 10)}, []stage{add("l"), txn(2, 0, 20)}, nil, 3},
		{"metadata change vs blind append", []stage{meta("k")}, []stage{add("l")}, ErrConflict, 0},
		{"metadata vs metadata", []stage{meta("k")}, []stage{meta("j")}, ErrConflict, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tbl, _ := newTestTable(t, Config{RetryBackoff: 1})
			commitAdds(t, tbl, "x", "y") // version 1
			base := mustSnapshot(t, tbl)
			w, l := tbl.NewTransaction(base), tbl.NewTransaction(base)
			for _, s := range tc.winner {
				s(w)
			}
			for _, s := range tc.loser {
				s(l)
			}
			if _, err := w.Commit(ctx); err != nil {
				t.Fatalf("winner: %v", err)
			}
			res, err := l.Commit(ctx)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("loser error = %v, want %v", err, tc.wantErr)
				}
				if s := mustSnapshot(t, tbl); s.Version() != 2 {
					t.Errorf("after a failed commit the table is at %d, want 2", s.Version())
				}
				return
			}
			if err != nil {
				t.Fatalf("loser: %v", err)
			}
			if res.Version != tc.wantVer {
				t.Errorf("loser version = %d, want %d", res.Version, tc.wantVer)
			}
		})
	}
}

func TestRefuseUnsupportedProtocol(t *testing.T) {
	ctx := context.Background()
	tbl, st := newTestTable(t, Config{})
	// Another engine upgrades the table to deletion vectors.
	body := `{"commitInfo":{"timestamp":1,"operation":"UPGRADE PROTOCOL"}}
{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors","appendOnly"]}}
`
	if err := st.PutIfAbsent(ctx, CommitKey(1), stringsReader(body)); err != nil {
		t.Fatal(err)
	}
	tx := tbl.NewTransaction(mustSnapshot(t, tbl))
	tx.Add(testAdd("a"))
	_, err := tx.Commit(ctx)
	var upe *UnsupportedProtocolError
	if !errors.As(err, &upe) || !errors.Is(err, ErrUnsupportedProtocol) {
		t.Fatalf("error = %v, want *UnsupportedProtocolError", err)
	}
	if fmt.Sprint(upe.Missing) != "[deletionVectors]" {
		t.Errorf("missing = %v, want [deletionVectors]", upe.Missing)
	}
}

// TestProtocolChangeDuringRetry: the upgrade lands between our read and our
// commit; the retry re-reads the protocol and refuses.
func TestProtocolChangeDuringRetry(t *testing.T) {
	ctx := context.Background()
	tbl, st := newTestTable(t, Config{})
	s := mustSnapshot(t, tbl)
	body := `{"protocol":{"minReaderVersion":1,"minWriterVersion":4}}
`
	if err := st.PutIfAbsent(ctx, CommitKey(1), stringsReader(body)); err != nil {
		t.Fatal(err)
	}
	tx := tbl.NewTransaction(s)
	tx.Add(testAdd("a"))
	if _, err := tx.Commit(ctx); !errors.Is(err, ErrUnsupportedProtocol) {
		t.Fatalf("error = %v, want ErrUnsupportedProtocol", err)
	}
}

func TestUpdateMatchesFullLoad(t *testing.T) {
	ctx := context.Background()
	tbl, _ := newTestTable(t, Config{})
	old := mustSnapshot(t, tbl)
	commitAdds(t, tbl, "a", "b")
	tx := tbl.NewTransaction(mustSnapshot(t, tbl))
	tx.Remove(Remove{Path: "day=2026-01-01/a", DataChange: true})
	tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: 0, First: 0, Last: 7})
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	upd, err := tbl.Update(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := snapshotFacts(t, upd), snapshotFacts(t, mustSnapshot(t, tbl)); a != b {
		t.Errorf("Update differs from a full load\n upd: %s\nfull: %s", a, b)
	}
	if old.Version() != 0 || old.NumFiles() != 0 {
		t.Errorf("Update changed its input: version %d, %d files", old.Version(), old.NumFiles())
	}
	if same, _ := tbl.Update(ctx, upd); same != upd {
		t.Error("Update of the latest snapshot did not return it")
	}
}

// TestStaleSnapshotOwnCommitNotFenced: a writer committing through an old
// snapshot meets its own previous commit as a winner; offsets do not
// overlap, so it is not fenced. An overlapping winner still fences.
func TestStaleSnapshotOwnCommitNotFenced(t *testing.T) {
	ctx := context.Background()
	tbl, st := newTestTable(t, Config{RetryBackoff: 1})
	stale := mustSnapshot(t, tbl)
	for i, want := range []error{nil, nil, ErrFenced} {
		tx := tbl.NewTransaction(stale)
		tx.Add(testAdd("f" + string(rune('a'+i))))
		first := int64(i * 10)
		if i == 2 {
			first = 15 // overlaps the second commit's 10..19
		}
		tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: 0, First: first, Last: int64(i*10 + 9)})
		_, err := tx.Commit(ctx)
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("commit %d: %v, want %v", i, err, want)
		}
	}
	auditLog(t, st)
}

func TestOperationParametersAreStrings(t *testing.T) {
	ctx := context.Background()
	tbl, _ := newTestTable(t, Config{})
	tx := tbl.NewTransaction(mustSnapshot(t, tbl))
	tx.SetOperation(OpStreamingUpdate, map[string]any{"outputMode": "Append", "deadLetters": true, "epochId": 7})
	res, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := tbl.History(ctx, res.Version)
	if err != nil {
		t.Fatal(err)
	}
	got := hist[len(hist)-1].CommitInfo.OperationParameters
	want := map[string]any{"outputMode": "Append", "deadLetters": "true", "epochId": "7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("operationParameters = %v, want %v", got, want)
	}
}

func tbl2Empty(t *testing.T) *Table {
	t.Helper()
	tbl, err := Open(mem.New(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}
