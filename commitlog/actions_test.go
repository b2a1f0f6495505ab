package commitlog

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/storage/mem"
)

// TestUnknownActionsAndFieldsPreserved: what another engine writes and we do
// not model survives a parse/encode round trip verbatim.
func TestUnknownActionsAndFieldsPreserved(t *testing.T) {
	in := strings.Join([]string{
		`{"add":{"path":"a%20b","partitionValues":{},"size":1,"modificationTime":2,"dataChange":true,"baseRowId":7,"deletionVector":{"storageType":"u","pathOrInlineDv":"ab","offset":1,"sizeInBytes":2,"cardinality":3}}}`,
		`{"cdc":{"path":"_change_data/x.parquet","partitionValues":{},"size":3,"dataChange":false}}`,
		`{"domainMetadata":{"domain":"delta.rowTracking","configuration":"{\"x\":1}","removed":false}}`,
		`{"commitInfo":{"timestamp":5,"operation":"WRITE","clientVersion":"delta-rs.0.4.1","txnId":"t"}}`,
	}, "\n") + "\n"
	actions, err := ParseCommit([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != 4 || actions[1].Other == nil || actions[1].Other.Name != "cdc" || actions[2].Other == nil {
		t.Fatalf("actions = %+v", actions)
	}
	if string(actions[0].Add.Extra["baseRowId"]) != "7" || actions[3].CommitInfo.TxnID != "t" {
		t.Errorf("extra fields lost: %+v %+v", actions[0].Add.Extra, actions[3].CommitInfo)
	}
	out, err := encodeActions(actions)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseCommit(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := encodeActions(again)
	if !bytes.Equal(out, out2) {
		t.Errorf("not stable:\n%s\n%s", out, out2)
	}
	for _, want := range []string{`"deletionVector":{"storageType":"u"`, `"cdc":{"path":"_change_data/x.parquet"`, `"clientVersion":"delta-rs.0.4.1"`, `"domain":"delta.rowTracking"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("re-encoded log lacks %s:\n%s", want, out)
		}
	}
	// Domain metadata is live state: it reaches snapshots and checkpoints.
	s := newSnapshot()
	for _, a := range actions {
		s.apply(a)
	}
	if d := s.DomainMetadata(); len(d) != 1 {
		t.Errorf("domain metadata = %v", d)
	}
}

func TestParseCommitErrors(t *testing.T) {
	for _, in := range []string{
		"{not json",
		`{"add":{"size":1}}`,
		`{"add":{"path":"x","size":"big"}}`,
		`{"txn":{"version":1}}`,
		`[1,2]`,
		`null`,
		`{"":{}}`,
		"{\"add\":{\"path\":\"a\"}}\n{\"remove\":{\"path\":\"\"}}",
	} {
		if _, err := ParseCommit([]byte(in)); err == nil {
			t.Errorf("ParseCommit(%q) succeeded", in)
		}
	}
}

// TestMultiPartCheckpoint: a complete multi-part checkpoint is used (the
// log has no commits below it); an incomplete set is ignored.
func TestMultiPartCheckpoint(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	tbl, err := Open(st, Config{DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		commitAdds(t, tbl, "f"+string(rune('a'+i)))
	}
	at4 := mustSnapshotAt(t, tbl, 4)
	want4, want6 := snapshotFacts(t, at4), snapshotFacts(t, mustSnapshot(t, tbl))
	part1, _, err := EncodeCheckpoint(at4, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	meta := newSnapshot() // part 2 repeats protocol and metaData only
	p, md := at4.Protocol(), at4.Metadata()
	meta.apply(Action{Protocol: &p})
	meta.apply(Action{Metadata: &md})
	part2, _, err := EncodeCheckpoint(meta, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, data []byte) {
		if err := st.Put(ctx, key, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	put(LogDir+"00000000000000000004.checkpoint.0000000001.0000000002.parquet", part1)
	put(LogDir+"00000000000000000004.checkpoint.0000000002.0000000002.parquet", part2)
	// An incomplete set at 5: must be ignored (it holds only metadata, and
	// using it would lose every file).
	put(LogDir+"00000000000000000005.checkpoint.0000000001.0000000003.parquet", part2)
	put(LogDir+"00000000000000000005.checkpoint.0000000003.0000000003.parquet", part2)
	for v := int64(0); v <= 4; v++ {
		if err := st.Delete(ctx, CommitKey(v)); err != nil {
			t.Fatal(err)
		}
	}
	s := mustSnapshot(t, tbl)
	if s.CheckpointVersion() != 4 {
		t.Errorf("loaded from checkpoint %d, want 4", s.CheckpointVersion())
	}
	if got := snapshotFacts(t, s); got != want6 {
		t.Errorf("latest via multi-part checkpoint differs\n got: %s\nwant: %s", got, want6)
	}
	if got := snapshotFacts(t, mustSnapshotAt(t, tbl, 4)); got != want4 {
		t.Errorf("version 4 via multi-part checkpoint differs")
	}
	if _, err := tbl.SnapshotAt(ctx, 3); err == nil {
		t.Error("version 3 below the only checkpoint loaded")
	}
}

// TestCorruptCheckpointFallsBack: an unreadable checkpoint is skipped in
// favour of a replay from commit 0, with the same result.
func TestCorruptCheckpointFallsBack(t *testing.T) {
	ctx := context.Background()
	tbl, st := newTestTable(t, Config{}) // interval 5
	for i := 0; i < 7; i++ {
		commitAdds(t, tbl, "f"+string(rune('a'+i)))
	}
	want := snapshotFacts(t, mustSnapshot(t, tbl))
	if s := mustSnapshot(t, tbl); s.CheckpointVersion() != 5 {
		t.Fatalf("checkpoint version %d, want 5", s.CheckpointVersion())
	}
	if err := st.Put(ctx, CheckpointKey(5), strings.NewReader("PAR1 garbage PAR1")); err != nil {
		t.Fatal(err)
	}
	s := mustSnapshot(t, tbl)
	if s.CheckpointVersion() != -1 {
		t.Errorf("used checkpoint %d, want a replay from 0", s.CheckpointVersion())
	}
	if got := snapshotFacts(t, s); got != want {
		t.Errorf("snapshot after corrupting the checkpoint differs")
	}
	// Without commit 0 there is nothing to fall back to: an error.
	if err := st.Delete(ctx, CommitKey(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Snapshot(ctx); err == nil {
		t.Error("loaded a snapshot with a corrupt checkpoint and no commit 0")
	}
}

// TestCommitInfoMetricsOfOtherEngines: delta-rs writes operationMetrics as
// numbers (Spark as strings); both parse, and a table with such a commit
// stays readable.
func TestCommitInfoMetricsOfOtherEngines(t *testing.T) {
	in := `{"commitInfo":{"timestamp":5,"operation":"WRITE","operationMetrics":{"execution_time_ms":12,"num_added_files":1,"num_added_rows":3,"ratio":0.5,"ok":true,"none":null,"nested":{"a":1},"numFiles":"4"},"clientVersion":"delta-rs.1.6.6"}}` + "\n"
	actions, err := ParseCommit([]byte(in))
	if err != nil {
		t.Fatalf("ParseCommit: %v", err)
	}
	got := actions[0].CommitInfo.OperationMetrics
	want := Metrics{"execution_time_ms": "12", "num_added_files": "1", "num_added_rows": "3", "ratio": "0.5", "ok": "true", "nested": `{"a":1}`, "numFiles": "4"}
	if len(got) != len(want) {
		t.Fatalf("metrics = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("metrics[%q] = %q, want %q", k, got[k], v)
		}
	}
	if _, err := ParseCommit([]byte(`{"commitInfo":{"timestamp":5,"operationMetrics":{"x":"unterminated}}}`)); err == nil {
		t.Error("a broken metrics object parsed")
	}
}
