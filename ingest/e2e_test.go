package ingest_test

import (
	"path/filepath"
	"testing"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/schema"
)

// TestEndToEnd produces N messages across 6 partitions, runs until caught up,
// and reads the table back with DuckDB: exactly N rows, every (partition,
// offset) once, each row equal to its message. A second run finds nothing
// new and commits nothing.
func TestEndToEnd(t *testing.T) {
	const n = 3000
	c := startKafka(t, 6, topic)
	var src produced
	produce(t, producer(t, c), &src, 0, n, marshal)
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)

	var events []ingest.CommitEvent
	r := runUntilCaughtUp(t, cfg, ingest.Options{OnCommit: func(e ingest.CommitEvent) { events = append(events, e) }})
	st := r.Stats()
	if st[0].RowsCommitted != n {
		t.Errorf("Stats: %d rows committed, want %d", st[0].RowsCommitted, n)
	}
	var hookRows int64
	for _, e := range events {
		hookRows += e.Rows
	}
	if len(events) == 0 || hookRows != n || events[len(events)-1].Version != st[0].Version {
		t.Errorf("OnCommit saw %d commits with %d rows (last version %v), want %d rows up to version %d", len(events), hookRows, events, n, st[0].Version)
	}
	db := ducktest.Open(t)
	checkExactlyOnce(t, readRows(t, db, filepath.Join(dir, "ad_impressions")), &src, nil)
	_, snap := tableFiles(t, filepath.Join(dir, "ad_impressions"))
	if got := len(snap.Txns()); got != 6 {
		t.Errorf("table has %d txn watermarks, want one per partition (6): %v", got, snap.Txns())
	}

	// Nothing new: a second run commits nothing and changes nothing.
	v := snap.Version()
	r2 := runUntilCaughtUp(t, cfg, ingest.Options{})
	if s := r2.Stats(); s[0].Commits != 0 || s[0].RecordsConsumed != 0 {
		t.Errorf("second run: %+v, want no commits and no records", s[0])
	}
	if _, snap2 := tableFiles(t, filepath.Join(dir, "ad_impressions")); snap2.Version() != v {
		t.Errorf("second run moved the table from version %d to %d", v, snap2.Version())
	}
}

// TestCompiledDescriptor runs a table configured with a compiled-in message
// descriptor instead of a descriptor file (what an embedding program such as
// the demo does); the table's proto pin is the same as with the file.
func TestCompiledDescriptor(t *testing.T) {
	const n = 200
	c := startKafka(t, 3, topic)
	var src produced
	produce(t, producer(t, c), &src, 0, n, marshal)
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	cfg.Tables[0].DescriptorSet = ""
	cfg.Tables[0].Descriptor = (&adtrackpb.AdImpression{}).ProtoReflect().Descriptor()
	runUntilCaughtUp(t, cfg, ingest.Options{})
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
	_, snap := tableFiles(t, filepath.Join(dir, "ad_impressions"))
	files, err := schema.ReadDescriptorSet(filepath.Join(repoRoot(t), "testdata/proto/adtrack/v1/adtrack.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	md, err := schema.FindMessage(files, "adtrack.v1.AdImpression", "adtrack.binpb")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := schema.Fingerprint(md)
	if got := commitlog.PinOf(snap.Metadata()).Fingerprint; got != want {
		t.Errorf("pin from the compiled descriptor = %s, from the descriptor set %s", got, want)
	}
}
