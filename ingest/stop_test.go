package ingest_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/writer"
)

// TestUndecodableWithoutDeadLetterStops: with dead letters disabled, an
// undecodable record stops Run with an error naming it, and nothing from
// it on is committed.
func TestUndecodableWithoutDeadLetterStops(t *testing.T) {
	const n, bad = 100, 60
	c := startKafka(t, 1, topic) // one partition: offset = message index
	var src produced
	produce(t, producer(t, c), &src, 0, n, func(i int) []byte {
		if i == bad {
			return corrupt(i)
		}
		return marshal(i)
	})
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	cfg.Tables[0].DeadLetter.Disabled = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: testLogger(t), UntilCaughtUp: true, KafkaOpts: fastGroup()})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(ctx)
	if !errors.As(err, new(*writer.DecodeError)) || !strings.Contains(err.Error(), "dead_letter is disabled") || !strings.Contains(err.Error(), topic+"/0@60") {
		t.Fatalf("Run = %v, want the decode error of %s/0@%d with dead_letter disabled", err, topic, bad)
	}
	if why := r.NotReady(); !strings.HasPrefix(why, "stopping on an error") {
		t.Errorf("NotReady = %q after stopping on an error", why)
	}
	for _, row := range readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")) {
		if row.offset >= bad {
			t.Errorf("offset %d committed, at or after the undecodable record", row.offset)
		}
	}
}

// TestUnsupportedProtocolStops: another engine upgrades the table to a
// protocol this version cannot write while Run streams into it; the next
// commit stops Run with ErrUnsupportedProtocol and writes nothing.
func TestUnsupportedProtocolStops(t *testing.T) {
	const n = 50
	c := startKafka(t, 2, topic)
	p := producer(t, c)
	var src produced
	produce(t, p, &src, 0, n, marshal)
	dir := tempDir(t)
	tdir := filepath.Join(dir, "ad_impressions")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := startRunner(ctx, t, baseConfig(t, c.ListenAddrs(), dir), ingest.Options{Logger: testLogger(t), KafkaOpts: fastGroup()})
	for r.Stats()[0].RowsCommitted < n && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	store, err := local.New(tdir)
	if err != nil {
		t.Fatal(err)
	}
	upgrade := tableVersion(t, tdir) + 1
	body := `{"commitInfo":{"timestamp":1,"operation":"UPGRADE PROTOCOL"}}
{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}
`
	if err := store.PutIfAbsent(ctx, commitlog.CommitKey(upgrade), strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	produce(t, p, &src, n, 2*n, marshal)
	ended, err := r.waitWithin(30 * time.Second)
	if !ended {
		t.Fatal("Run still running 30s after the protocol upgrade")
	}
	if !errors.Is(err, commitlog.ErrUnsupportedProtocol) {
		t.Fatalf("Run = %v, want ErrUnsupportedProtocol", err)
	}
	if v := tableVersion(t, tdir); v != upgrade {
		t.Errorf("table at version %d after Run stopped, want %d (the upgrade)", v, upgrade)
	}
}
