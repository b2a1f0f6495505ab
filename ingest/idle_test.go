package ingest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
)

// TestUntilCaughtUpIdleInstance: with more instances than partitions, an
// instance run with UntilCaughtUp that is assigned no partition stops once
// the instance holding the partition has committed up to the end offsets
// it saw at start (it waits on the table's watermarks), without consuming
// anything itself.
func TestUntilCaughtUpIdleInstance(t *testing.T) {
	c := startKafka(t, 1, topic)
	p := producer(t, c)
	var src produced
	produce(t, p, &src, 0, 300, marshal)
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	// Long enough that the idle instance starts while the records produced
	// after the first commit are not committed yet.
	cfg.Tables[0].Flush.CommitInterval = 2 * time.Second

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The streaming instance takes the only partition and keeps it.
	committed := make(chan struct{}, 1)
	streaming := startRunner(ctx, t, cfg, ingest.Options{Logger: testLogger(t), KafkaOpts: fastGroup(),
		OnCommit: func(ingest.CommitEvent) {
			select {
			case committed <- struct{}{}:
			default:
			}
		}})
	select {
	case <-committed:
	case <-ctx.Done():
		t.Fatal("the streaming instance never committed")
	}
	produce(t, p, &src, 300, 500, marshal)

	idle, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: testLogger(t), UntilCaughtUp: true, KafkaOpts: fastGroup()})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Run(ctx); err != nil {
		t.Fatalf("idle instance: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the idle instance did not stop before the deadline")
	}
	if st := idle.Stats()[0]; st.RecordsConsumed != 0 || st.Commits != 0 {
		t.Fatalf("the idle instance consumed %d records and made %d commits: it was not idle (the test needs it idle)", st.RecordsConsumed, st.Commits)
	}
	// It stopped because the table had reached the end, not before.
	_, snap := tableFiles(t, filepath.Join(dir, "ad_impressions"))
	if v, ok := snap.TxnVersion(commitlog.KafkaAppID("lake", topic, 0)); !ok || v != 499 {
		t.Fatalf("the idle instance stopped at watermark %d (set %v), want 499", v, ok)
	}
	if err := streaming.stop(); err != nil {
		t.Fatalf("streaming instance: %v", err)
	}
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), &src, nil)
}
