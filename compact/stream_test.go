package compact_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/compact"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/adtrack"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/local"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// TestCompactWhileStreaming runs the streaming writer (kfake + ingest
// Runner, a commit every 100ms) while compactions run in a loop, then checks
// with DuckDB that the table holds exactly the produced records: every
// (partition, offset) once, no row lost or doubled.
func TestCompactWhileStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for a few seconds")
	}
	const topic = "ads.click.stream"
	const n = 6000
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic), kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "500"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	dir := t.TempDir()
	uri := filepath.Join(dir, "ad_impressions")
	cfg := ingest.Config{
		Kafka: ingest.KafkaConfig{Brokers: c.ListenAddrs(), GroupID: "lake"},
		Tables: []ingest.TableConfig{{
			Name:          "ad_impressions",
			URI:           uri,
			Topics:        []string{topic},
			Message:       "adtrack.v1.AdImpression",
			DescriptorSet: filepath.Join(repoRoot(), "testdata/proto/adtrack/v1/adtrack.binpb"),
			PartitionBy:   []string{"day(event_time)"},
			Flush:         ingest.FlushConfig{CommitInterval: 100 * time.Millisecond},
		}},
		HTTP:            ingest.HTTPConfig{Listen: "off"},
		ShutdownTimeout: 20 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runner, err := ingest.NewRunner(ctx, cfg, ingest.Options{KafkaOpts: []kgo.Opt{kgo.SessionTimeout(3 * time.Second), kgo.HeartbeatInterval(300 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- runner.Run(runCtx) }()

	// Produce in paced batches while compacting.
	produced := make(chan error, 1)
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < n; {
			var recs []*kgo.Record
			for j := 0; j < 200 && i < n; j, i = j+1, i+1 {
				m := adtrack.Impression(r, i, adtrack.CorpusBase, 30*time.Second) // ~2 days of event time
				b, _ := proto.Marshal(m)
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: b})
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			time.Sleep(60 * time.Millisecond)
		}
		produced <- nil
	}()

	store, err := local.New(uri)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := commitlog.Open(store, commitlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	compactions, compactedFiles := 0, 0
	done := false
	for !done {
		select {
		case err := <-produced:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		case <-time.After(150 * time.Millisecond):
		}
		res, err := compact.Run(ctx, tbl, compact.Config{MinFiles: 2, MaxConcurrent: 2})
		if err != nil {
			continue // no table yet
		}
		if err := res.Err(); err != nil {
			t.Errorf("compaction while streaming: %v", err)
		}
		for _, p := range res.Partitions {
			if p.Version >= 0 {
				compactions++
				compactedFiles += p.RemovedFiles
			}
		}
	}
	// Wait until everything produced is committed, then stop the writer.
	deadline := time.Now().Add(60 * time.Second)
	for {
		snap, err := tbl.Snapshot(ctx)
		if err == nil {
			if rows, ok := snap.NumRecords(); ok && rows >= n {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the table did not reach %d rows", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// One more compaction after the last appends.
	if res, err := compact.Run(ctx, tbl, compact.Config{MinFiles: 2}); err != nil || res.Err() != nil {
		t.Fatalf("final compaction: %v %v", err, res.Err())
	}
	stopRun()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if compactions == 0 {
		t.Fatalf("no compaction committed while streaming")
	}
	t.Logf("%d partition compactions of %d files ran while streaming", compactions, compactedFiles)

	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := ducktest.Open(t)
	src := ducktest.ReadParquet(localFiles(uri, snap)...)
	got := ducktest.Rows(t, db, fmt.Sprintf("SELECT count(*), count(DISTINCT (_kafka.partition, _kafka.offset)), count(DISTINCT impression_id), min(_kafka.offset), sum(_kafka.offset) FROM %s", src))[0]
	// 3 partitions, round robin: offsets 0..1999 in each.
	want := []string{strconv.Itoa(n), strconv.Itoa(n), strconv.Itoa(n), "0", strconv.Itoa(3 * 1999 * 2000 / 2)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows, distinct offsets, distinct ids, min offset, sum of offsets = %v, want %v", got, want)
	}
	for appID, v := range snap.Txns() {
		if v != n/3-1 {
			t.Errorf("watermark %s = %d, want %d", appID, v, n/3-1)
		}
	}
}
