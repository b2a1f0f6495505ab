package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRegistryOutage takes the registry down while records with a schema id
// the Runner has not seen arrive: the table's fetches pause, Ready reports
// false, nothing is dead-lettered and nothing past the first undecoded
// record is committed; once the registry answers every record lands exactly
// once. PLTEST_REGISTRY_OUTAGE sets the outage (default 2s; the
// issue's scenario is 30s).
func TestRegistryOutage(t *testing.T) {
	for _, hang := range []bool{false, true} {
		t.Run(map[bool]string{false: "503", true: "hanging"}[hang], func(t *testing.T) {
			c := startKafka(t, 2, "payments")
			testRegistryOutage(t, hang, c.ListenAddrs(), "payments", nil)
		})
	}
}

// testRegistryOutage is TestRegistryOutage against the brokers, on topic.
func testRegistryOutage(t *testing.T, hang bool, brokers []string, topic string, kopts []kgo.Opt) {
	outage := 2 * time.Second
	if v, err := time.ParseDuration(os.Getenv("PLTEST_REGISTRY_OUTAGE")); err == nil {
		outage = v
	}
	const n = 40
	reg := newSRShop(t)
	reg.hang.Store(hang)
	id1, s1 := reg.register(topic+"-value", srPaymentV1)
	p, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dir := tempDir(t)
	metrics := prometheus.NewRegistry()
	cfg := registryConfig(t, brokers, dir, reg.URL())
	cfg.Tables[0].Topics = []string{topic}
	cfg.Tables[0].SchemaRegistry.Timeout = 300 * time.Millisecond
	run := runStreaming(t, cfg, ingest.Options{Registerer: metrics, KafkaOpts: kopts})
	st := func() ingest.TableStats { return run.Stats()[0] }
	unavailable := func() string {
		mfs, _ := metrics.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "protolake_ingest_registry_unavailable" {
				return fmt.Sprint(mf.GetMetric()[0].GetGauge().GetValue())
			}
		}
		return "none"
	}
	var vals [][]byte
	for i := range n {
		vals = append(vals, payment(t, id1, s1, i))
	}
	produceValues(t, p, topic, vals...)
	waitFor(t, "the v1 rows", func() bool { return st().RowsCommitted == n && run.Ready() })

	id2, s2 := reg.register(topic+"-value", srPaymentV2)
	reg.down.Store(true)
	vals = nil
	for i := n; i < 3*n; i++ {
		vals = append(vals, payment(t, id2, s2, i))
	}
	produceValues(t, p, topic, vals...)
	waitFor(t, "not ready", func() bool { return !run.Ready() })
	time.Sleep(outage)
	if s := st(); s.RowsCommitted != n || s.DeadLetters != 0 {
		t.Fatalf("during the outage: %+v, want %d rows and no dead letters", s, n)
	}
	if run.Ready() {
		t.Fatal("ready during the outage")
	}
	if got := unavailable(); got != "1" {
		t.Errorf("protolake_ingest_registry_unavailable = %s during the outage, want 1", got)
	}
	reg.down.Store(false)
	waitFor(t, "every row after the outage", func() bool { return st().RowsCommitted == 3*n })
	waitFor(t, "ready again", run.Ready)
	if got := unavailable(); got != "0" {
		t.Errorf("protolake_ingest_registry_unavailable = %s after the outage, want 0", got)
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	if s := st(); s.DeadLetters != 0 {
		t.Errorf("%d dead letters after an outage", s.DeadLetters)
	}
	files, _ := tableFiles(t, filepath.Join(dir, "payments"))
	src := strings.TrimSuffix(ducktest.ReadParquet(files...), ")") + ", union_by_name=true)"
	rows := ducktest.Rows(t, ducktest.Open(t), "SELECT id, count(*), max(amount.units) FROM "+src+" GROUP BY id")
	if len(rows) != 3*n {
		t.Fatalf("%d distinct ids, want %d", len(rows), 3*n)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	for i, r := range rows {
		if r[0] != fmt.Sprintf("p-%05d", i) || r[1] != "1" || r[2] != fmt.Sprint(i) {
			t.Fatalf("row %d = %v, want p-%05d once", i, r, i)
		}
	}
}

// TestRegistryCrashRecovery SIGKILLs protolake processes at random moments
// while the producer moves from schema version 1 to version 2 (registered
// mid-stream, so the table evolves while processes die) and sends records
// of an incompatible version 3 (dead letters): at the end the table holds
// every good record exactly once, with the values its producer wrote, and
// the dead-letter table every incompatible one exactly once.
// PLTEST_CRASH_ITERATIONS sets the number of kills (default 6). The interop
// tier runs it against a real registry server (registry_interop_test.go).
func TestRegistryCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	testRegistryCrashRecovery(t, newSRShop(t), topic+"-value")
}

// testRegistryCrashRecovery is TestRegistryCrashRecovery with the table's
// schemas registered in reg under subject.
func testRegistryCrashRecovery(t *testing.T, reg shopRegistry, subject string) {
	iters := envInt("PLTEST_CRASH_ITERATIONS", 6)
	n := 300 * (iters + 2)
	id1, s1 := reg.register(subject, srPaymentV1)
	isBad := func(i int) bool { return i >= n/2 && i%40 == 7 }
	c := startKafka(t, 4, topic)
	dir := tempDir(t)
	cfg := registryConfig(t, c.ListenAddrs(), dir, reg.URL())
	cfg.Tables[0].Topics = []string{topic}
	cfg.Tables[0].Subject = subject
	cfg.Tables[0].Flush = ingest.FlushConfig{CommitInterval: 100 * time.Millisecond, MaxRows: 150}
	// The table is created at v1 (NewRunner creates it); v2 and v3 are
	// registered afterwards, so the processes evolve it while they die.
	if _, err := ingest.NewRunner(context.Background(), cfg, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	id2, s2 := reg.register(subject, srPaymentV2)
	id3, s3 := reg.register(subject, srPaymentV3)
	every := time.Duration(iters) * 2 * time.Second / time.Duration(n/30)
	bg := produceInBackground(t, producer(t, c), n, 30, every, func(i int) []byte {
		switch {
		case i < n/3:
			return payment(t, id1, s1, i)
		case isBad(i):
			return payment(t, id3, s3, i)
		}
		return payment(t, id2, s2, i)
	})
	tdir := filepath.Join(dir, "payments")
	version := func() int64 { return tableVersion(t, tdir) }
	for i := range iters {
		before := version()
		start := time.Now()
		ch := startChild(t, cfg)
		for version() == before && time.Since(start) < 10*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(i*53%400) * time.Millisecond)
		ch.kill(t)
		t.Logf("iteration %d: killed after %v at table version %d (was %d)", i, time.Since(start).Round(time.Millisecond), version(), before)
	}
	src := bg.wait(t)
	awaitKilledMembersGone(t, producer(t, c), cfg.Kafka.GroupID)
	r := runUntilCaughtUp(t, cfg, ingest.Options{KafkaOpts: childGroup()})
	t.Logf("final run: %+v", r.Stats()[0])
	files, snap := tableFiles(t, tdir)
	if v := snap.Metadata().Configuration[ingest.PropRegistryVersion]; v != "2" {
		t.Errorf("table at registry version %q, want 2", v)
	}
	db := ducktest.Open(t)
	q := "SELECT _kafka.partition, _kafka.offset, id, amount.currency, amount.units, method, _unknown FROM " +
		strings.TrimSuffix(ducktest.ReadParquet(files...), ")") + ", union_by_name=true)"
	seen := map[[2]int64]bool{}
	for _, row := range ducktest.Rows(t, db, q) {
		var k [2]int64
		fmt.Sscan(row[0], &k[0])
		fmt.Sscan(row[1], &k[1])
		i, ok := src.byCoord[k]
		if !ok || isBad(i) {
			t.Fatalf("row %v is not a good produced record", row)
		}
		if seen[k] {
			t.Fatalf("row %v twice", row)
		}
		seen[k] = true
		if want := fmt.Sprintf("p-%05d|EUR|%d", i, i); strings.Join(row[2:5], "|") != want || row[6] != "NULL" {
			t.Fatalf("row %v, want %s and no unknown fields", row, want)
		}
		if i >= n/3 && row[5] != "card" {
			t.Fatalf("v2 row %v lost its method", row)
		}
	}
	good := 0
	for _, i := range src.byCoord {
		if !isBad(i) {
			good++
		}
	}
	if len(seen) != good {
		t.Errorf("table holds %d distinct records, want %d", len(seen), good)
	}
	checkDeadLetters(t, db, filepath.Join(dir, "payments_dlq"), src, isBad)
}

// BenchmarkRegistryDecode compares the same Payment records consumed end to
// end (kfake → committed table) as raw protobuf with a compiled-in
// descriptor and as Confluent-framed records resolved through the registry
// (one schema id: every record after the first is a cache hit). Compare
// the msgs/s of the two sub-benchmarks:
//
//	go test ./ingest -run '^$' -bench RegistryDecode -benchtime 100000x
