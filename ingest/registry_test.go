package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/registry"
	"github.com/protolake/protolake/storage/local"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Schemas of subject payments-value. Money lives in its own subject
// (shop.common.money) and is imported by reference.
const (
	srMoney = `syntax = "proto3";
package shop.common;
message Money { string currency = 1; int64 units = 2; }
`
	srPaymentV1 = `syntax = "proto3";
package shop.v1;
import "shop/common/money.proto";
message Payment { string id = 1; shop.common.Money amount = 2; }
`
	// v2 adds a field: a compatible evolution.
	srPaymentV2 = `syntax = "proto3";
package shop.v1;
import "shop/common/money.proto";
message Payment { string id = 1; shop.common.Money amount = 2; string method = 3; }
`
	// v3 changes id from string to int64: breaking.
	srPaymentV3 = `syntax = "proto3";
package shop.v1;
import "shop/common/money.proto";
message Payment { int64 id = 1; shop.common.Money amount = 2; string method = 3; }
`
	// v4 only reserves a number: the same columns, another proto version
	// (a second evolution, which must re-pin the table again).
	srPaymentV4 = `syntax = "proto3";
package shop.v1;
import "shop/common/money.proto";
message Payment { string id = 1; shop.common.Money amount = 2; string method = 3; reserved 9; }
`
	srOther = `syntax = "proto3";
package other;
message Thing { string name = 1; }
`
)

// srShop is a fake registry (franz-go's srfake, the documented REST API)
// with the Money reference registered.
type srShop struct {
	*srfake.Registry
	t    *testing.T
	down atomic.Bool // answer 503 to everything
	hang atomic.Bool // with down: do not answer at all (a stopped process)
}

func newSRShop(t *testing.T) *srShop {
	t.Helper()
	s := &srShop{Registry: srfake.New(), t: t}
	t.Cleanup(s.Close)
	s.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		for s.down.Load() && s.hang.Load() {
			select {
			case <-r.Context().Done():
				return true
			case <-time.After(10 * time.Millisecond):
			}
		}
		if s.down.Load() {
			http.Error(w, `{"error_code":50003,"message":"backend down"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	s.register("shop.common.money", srMoney)
	return s
}

// register registers text under subject (with the Money reference when it
// imports it) and returns its id and the compiled schema.
func (s *srShop) register(subject, text string) (int, *registry.Schema) {
	s.t.Helper()
	sch := sr.Schema{Schema: text, Type: sr.TypeProtobuf}
	if strings.Contains(text, "money.proto") {
		sch.References = []sr.SchemaReference{{Name: "shop/common/money.proto", Subject: "shop.common.money", Version: 1}}
	}
	id, _, err := s.RegisterSchema(subject, sch)
	if err != nil {
		s.t.Fatal(err)
	}
	cl, err := registry.New(registry.Config{URL: s.URL()}, registry.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	compiled, err := cl.Schema(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return id, compiled
}

// payment encodes payment i with schema sch, framed as franz-go's serde
// frames it (magic 0, id, message indexes).
func payment(t testing.TB, id int, sch *registry.Schema, i int) []byte {
	t.Helper()
	md, err := sch.Message(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(md)
	f := md.Fields()
	if idf := f.ByName("id"); idf.Kind() == protoreflect.StringKind {
		m.Set(idf, protoreflect.ValueOfString(fmt.Sprintf("p-%05d", i)))
	} else {
		m.Set(idf, protoreflect.ValueOfInt64(int64(i)))
	}
	amt := m.Mutable(f.ByName("amount")).Message()
	amt.Set(amt.Descriptor().Fields().ByName("currency"), protoreflect.ValueOfString("EUR"))
	amt.Set(amt.Descriptor().Fields().ByName("units"), protoreflect.ValueOfInt64(int64(i)))
	if mf := f.ByName("method"); mf != nil {
		m.Set(mf, protoreflect.ValueOfString("card"))
	}
	b, err := sr.Encode(m, &sr.ConfluentHeader{}, id, []int{0}, func(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) })
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func registryConfig(t *testing.T, brokers []string, dir, url string) ingest.Config {
	cfg := baseConfig(t, brokers, dir)
	cfg.Tables[0] = ingest.TableConfig{Name: "payments", URI: filepath.Join(dir, "payments"), Topics: []string{"payments"},
		SchemaRegistry: registry.Config{URL: url, MaxBackoff: 200 * time.Millisecond},
		Flush:          ingest.FlushConfig{CommitInterval: 200 * time.Millisecond}}
	return cfg
}

// streaming runs a Runner until stop is called.
type streaming struct {
	r    *ingest.Runner
	stop func() error
}

func runStreaming(t *testing.T, cfg ingest.Config, opts ingest.Options) *streaming {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	opts.KafkaOpts = append(fastGroup(), opts.KafkaOpts...) // the caller's win
	ctx, cancel := context.WithCancel(context.Background())
	r, err := ingest.NewRunner(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatalf("NewRunner: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var stopped bool
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return &streaming{r: r, stop: stop}
}

// waitFor polls cond for up to 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func produceValues(t *testing.T, p *kgo.Client, topic string, vals ...[]byte) {
	t.Helper()
	recs := make([]*kgo.Record, len(vals))
	for i, v := range vals {
		recs[i] = &kgo.Record{Topic: topic, Value: v}
	}
	if err := p.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryEvolutionMidStream runs one Runner over a registry-fed topic
// while the producer moves from version 1 to a compatible version 2 (the
// table evolves on the next commit: merged metaData, the pin and the
// registry subject/version/id, old rows null in the new column), then to
// an incompatible version 3 (dead-lettered with the diff while the table
// keeps committing), and sends an unframed record, a record with an unknown
// schema id and one with another subject's id (dead-lettered with the
// reason). Money is imported from another subject by reference.
func TestRegistryEvolutionMidStream(t *testing.T) {
	const n = 50
	reg := newSRShop(t)
	id1, s1 := reg.register("payments-value", srPaymentV1)
	c := startKafka(t, 1, "payments")
	p := producer(t, c)
	dir := tempDir(t)
	var evolved, evolvedLast atomic.Int64
	metrics := prometheus.NewRegistry()
	run := runStreaming(t, registryConfig(t, c.ListenAddrs(), dir, reg.URL()), ingest.Options{Registerer: metrics, OnCommit: func(e ingest.CommitEvent) {
		if e.Evolved && !e.DeadLetter {
			evolved.CompareAndSwap(0, e.Version)
			evolvedLast.Store(e.Version)
		}
	}})
	rowsOf := func() int64 { return run.r.Stats()[0].RowsCommitted }
	deadOf := func() int64 { return run.r.Stats()[0].DeadLetters }

	var vals [][]byte
	for i := range n {
		vals = append(vals, payment(t, id1, s1, i))
	}
	produceValues(t, p, "payments", vals...)
	waitFor(t, "the v1 rows", func() bool { return rowsOf() == n })

	id2, s2 := reg.register("payments-value", srPaymentV2)
	id3, s3 := reg.register("payments-value", srPaymentV3)
	idOther, sOther := reg.register("others-value", srOther)
	vals = nil
	for i := n; i < 2*n; i++ {
		vals = append(vals, payment(t, id2, s2, i))
	}
	otherMsg, _ := sOther.Message(nil)
	otherVal, _ := sr.Encode(dynamicpb.NewMessage(otherMsg), &sr.ConfluentHeader{}, idOther, []int{0}, func(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) })
	vals = append(vals,
		payment(t, id3, s3, 2*n),    // incompatible
		[]byte("\x0a\x03abc"),       // unframed (raw protobuf)
		payment(t, 9999, s2, 2*n+2), // unknown id
		otherVal,                    // another subject's id
	)
	for i := 2*n + 4; i < 3*n; i++ {
		vals = append(vals, payment(t, id1, s1, i)) // an older producer, still on v1
	}
	produceValues(t, p, "payments", vals...)
	waitFor(t, "all rows and dead letters", func() bool { return rowsOf() == 3*n-4 && deadOf() == 4 })
	id4, s4 := reg.register("payments-value", srPaymentV4)
	vals = nil
	for i := 3 * n; i < 4*n; i++ {
		vals = append(vals, payment(t, id4, s4, i))
	}
	produceValues(t, p, "payments", vals...)
	waitFor(t, "the v4 rows", func() bool { return rowsOf() == 4*n-4 })
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	rejected := map[string]float64{}
	mfs, _ := metrics.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "protolake_ingest_registry_rejected_total" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" {
						rejected[l.GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if want := "map[incompatible:1 other_subject:1 unframed:1 unknown_id:1]"; fmt.Sprint(rejected) != want {
		t.Errorf("protolake_ingest_registry_rejected_total by reason = %v, want %s", rejected, want)
	}
	if evolved.Load() <= 0 || evolvedLast.Load() <= evolved.Load() {
		t.Fatalf("evolving commits %d and %d, want two", evolved.Load(), evolvedLast.Load())
	}

	// The table follows v4: merged schema, pin, registry lineage.
	tdir := filepath.Join(dir, "payments")
	files, snap := tableFiles(t, tdir)
	conf := snap.Metadata().Configuration
	for k, want := range map[string]string{ingest.PropRegistrySubject: "payments-value", ingest.PropRegistryVersion: "4",
		ingest.PropRegistrySchemaID: fmt.Sprint(id4), commitlog.PropProtoVersion: "payments-value/4", commitlog.PropProtoMessage: "shop.v1.Payment"} {
		if conf[k] != want {
			t.Errorf("metaData.configuration[%s] = %q, want %q", k, conf[k], want)
		}
	}
	store, _ := local.New(tdir)
	tbl, _ := commitlog.Open(store, commitlog.Config{})
	if _, err := tbl.Descriptors(context.Background(), conf[commitlog.PropProtoFingerprint]); err != nil {
		t.Errorf("v4 descriptors not archived: %v", err)
	}
	// Every commit's commitInfo names the registry version it was written with.
	hist, err := tbl.History(context.Background(), commitlog.Latest)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]bool{}
	for _, h := range hist {
		if h.CommitInfo == nil || h.CommitInfo.Operation != commitlog.OpStreamingUpdate {
			continue
		}
		op := h.CommitInfo.OperationParameters
		if op["registrySubject"] != "payments-value" {
			t.Errorf("version %d: commitInfo.operationParameters lacks the registry subject: %v", h.Version, op)
		}
		versions[fmt.Sprint(op["registryVersion"])] = true
		if h.Version == evolved.Load() && fmt.Sprint(op["registryVersion"]) != "2" {
			t.Errorf("evolving commit %d says registry version %v", h.Version, op["registryVersion"])
		}
	}
	if !versions["1"] || !versions["2"] || !versions["4"] || versions["3"] {
		t.Errorf("commits name registry versions %v, want 1, 2 and 4", versions)
	}

	// Every row reads back (all columns): v1 rows null in the new column.
	db := ducktest.Open(t)
	src := strings.TrimSuffix(ducktest.ReadParquet(files...), ")") + ", union_by_name=true)"
	// Every column of the table, in the table's order.
	if cols, _ := commitlog.SchemaFieldNames(snap.Metadata().SchemaString); fmt.Sprint(cols) != "[id amount method _kafka _unknown]" {
		t.Fatalf("columns %v", cols)
	}
	rows := ducktest.Rows(t, db, "SELECT id, amount, method, _unknown, _kafka.offset, _kafka.topic, _kafka.partition FROM "+src+" ORDER BY _kafka.offset")
	if len(rows) != 4*n-4 {
		t.Fatalf("%d rows, want %d", len(rows), 4*n-4)
	}
	for _, r := range rows {
		line := strings.Join(r, "|")
		var off int
		fmt.Sscan(r[4], &off)
		i := off         // payment i is at offset i (the dead letters' offsets are not in the table)
		method := "NULL" // v1 rows written before the evolution: their files lack the column
		switch {
		case i >= n && i < 2*n:
			method = "card"
		case i >= 3*n:
			method = "card"
		case i >= 2*n:
			// v1 records after the evolution are decoded with v2's plan:
			// an implicit-presence proto3 string reads as "", as every
			// v2 reader sees it.
			method = ""
		}
		want := fmt.Sprintf("p-%05d|map[currency:EUR units:%d]|%s|NULL|%d|payments|0", i, i, method, off)
		if !strings.HasPrefix(line, fmt.Sprintf("p-%05d|", i)) || line != want {
			t.Errorf("row at offset %d = %s, want %s", off, line, want)
			break
		}
	}

	// Dead letters carry the reasons; the incompatible one the diff.
	dfiles, _ := tableFiles(t, filepath.Join(dir, "payments_dlq"))
	dl := ducktest.Rows(t, db, "SELECT _kafka.offset, error FROM "+ducktest.ReadParquet(dfiles...)+" ORDER BY 1")
	wantErr := []string{"incompatible schema", "not Confluent-framed", "unknown to the registry", "another subject"}
	if len(dl) != 4 {
		t.Fatalf("dead letters %v, want 4", dl)
	}
	for i, d := range dl {
		if d[0] != fmt.Sprint(2*n+i) || !strings.Contains(d[1], wantErr[i]) {
			t.Errorf("dead letter %d = %v, want offset %d and %q", i, d, 2*n+i, wantErr[i])
		}
	}
	if !strings.Contains(dl[0][1], "id") || !strings.Contains(dl[0][1], "int64") {
		t.Errorf("incompatible dead letter does not carry the diff: %s", dl[0][1])
	}
	t.Logf("incompatible: %s", dl[0][1])
}

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
	st := func() ingest.TableStats { return run.r.Stats()[0] }
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
	waitFor(t, "the v1 rows", func() bool { return st().RowsCommitted == n && run.r.Ready() })

	id2, s2 := reg.register(topic+"-value", srPaymentV2)
	reg.down.Store(true)
	vals = nil
	for i := n; i < 3*n; i++ {
		vals = append(vals, payment(t, id2, s2, i))
	}
	produceValues(t, p, topic, vals...)
	waitFor(t, "not ready", func() bool { return !run.r.Ready() })
	time.Sleep(outage)
	if s := st(); s.RowsCommitted != n || s.DeadLetters != 0 {
		t.Fatalf("during the outage: %+v, want %d rows and no dead letters", s, n)
	}
	if run.r.Ready() {
		t.Fatal("ready during the outage")
	}
	if got := unavailable(); got != "1" {
		t.Errorf("protolake_ingest_registry_unavailable = %s during the outage, want 1", got)
	}
	reg.down.Store(false)
	waitFor(t, "every row after the outage", func() bool { return st().RowsCommitted == 3*n })
	waitFor(t, "ready again", run.r.Ready)
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
// PLTEST_CRASH_ITERATIONS sets the number of kills (default 6).
func TestRegistryCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	iters := envInt("PLTEST_CRASH_ITERATIONS", 6)
	n := 300 * (iters + 2)
	reg := newSRShop(t)
	subject := topic + "-value"
	id1, s1 := reg.register(subject, srPaymentV1)
	isBad := func(i int) bool { return i >= n/2 && i%40 == 7 }
	c := startKafka(t, 4, topic)
	dir := tempDir(t)
	cfg := registryConfig(t, c.ListenAddrs(), dir, reg.URL())
	cfg.Tables[0].Topics = []string{topic}
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
func BenchmarkRegistryDecode(b *testing.B) {
	reg := srfake.New()
	defer reg.Close()
	if _, _, err := reg.RegisterSchema("shop.common.money", sr.Schema{Schema: srMoney, Type: sr.TypeProtobuf}); err != nil {
		b.Fatal(err)
	}
	id, _, err := reg.RegisterSchema("payments-value", sr.Schema{Schema: srPaymentV1, Type: sr.TypeProtobuf,
		References: []sr.SchemaReference{{Name: "shop/common/money.proto", Subject: "shop.common.money", Version: 1}}})
	if err != nil {
		b.Fatal(err)
	}
	cl, _ := registry.New(registry.Config{URL: reg.URL()}, registry.Options{})
	sch, err := cl.Schema(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	md, _ := sch.Message(nil)
	for _, mode := range []string{"raw", "registry"} {
		b.Run(mode, func(b *testing.B) {
			c := startKafka(b, 4, "payments")
			p := producer(b, c)
			for from := 0; from < b.N; from += 10000 {
				var recs []*kgo.Record
				for i := from; i < min(b.N, from+10000); i++ {
					v := payment(b, id, sch, i)
					if mode == "raw" {
						v = v[6:] // magic, id, the [0] index byte
					}
					recs = append(recs, &kgo.Record{Topic: "payments", Value: v})
				}
				if err := p.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
			dir := tempDir(b)
			cfg := baseConfig(b, c.ListenAddrs(), dir)
			cfg.Tables[0] = ingest.TableConfig{Name: "payments", URI: filepath.Join(dir, "payments"), Topics: []string{"payments"},
				Flush: ingest.FlushConfig{CommitInterval: 10 * time.Second}}
			if mode == "raw" {
				cfg.Tables[0].Descriptor, cfg.Tables[0].Message = md, string(md.FullName())
			} else {
				cfg.Tables[0].SchemaRegistry = registry.Config{URL: reg.URL()}
			}
			b.ResetTimer()
			r := runUntilCaughtUp(b, cfg, ingest.Options{Logger: slog.New(slog.DiscardHandler)})
			b.StopTimer()
			if got := r.Stats()[0].RowsCommitted; got != int64(b.N) {
				b.Fatalf("committed %d rows, want %d", got, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// TestRegistryJudgedAgainstHistory: a registry version is judged as a
// descriptor given at start is (CheckTable: the table's schema and every
// archived version). v2 removes field 4 and reserves it, v3 adds a field and
// keeps the reservation, v4 reuses number 4 for another field: its records
// are dead letters naming the reservation, while v1..v3 evolve the table.
func TestRegistryJudgedAgainstHistory(t *testing.T) {
	const head = `syntax = "proto3";
package shop.v1;
import "shop/common/money.proto";
message Payment { string id = 1; shop.common.Money amount = 2; `
	reg := newSRShop(t)
	id1, s1 := reg.register("payments-value", head+`string note = 4; }`)
	c := startKafka(t, 1, "payments")
	p := producer(t, c)
	dir := tempDir(t)
	cfg := registryConfig(t, c.ListenAddrs(), dir, reg.URL())
	if _, err := ingest.NewRunner(context.Background(), cfg, ingest.Options{}); err != nil { // creates the table at v1
		t.Fatal(err)
	}
	id2, s2 := reg.register("payments-value", head+`reserved 4; reserved "note"; }`)
	id3, s3 := reg.register("payments-value", head+`string channel = 5; reserved 4; reserved "note"; }`)
	id4, s4 := reg.register("payments-value", head+`string channel = 5; string memo = 4; }`)
	var vals [][]byte
	for i, v := range []struct {
		id int
		s  *registry.Schema
	}{{id1, s1}, {id2, s2}, {id3, s3}, {id4, s4}, {id3, s3}} {
		vals = append(vals, payment(t, v.id, v.s, 2*i), payment(t, v.id, v.s, 2*i+1))
	}
	produceValues(t, p, "payments", vals...)
	r := runUntilCaughtUp(t, cfg, ingest.Options{})
	if s := r.Stats()[0]; s.RowsCommitted != 8 || s.DeadLetters != 2 {
		t.Fatalf("stats %+v, want 8 rows and 2 dead letters", s)
	}
	_, snap := tableFiles(t, filepath.Join(dir, "payments"))
	if v := snap.Metadata().Configuration[ingest.PropRegistryVersion]; v != "3" {
		t.Errorf("table at registry version %s, want 3", v)
	}
	dfiles, _ := tableFiles(t, filepath.Join(dir, "payments_dlq"))
	for _, d := range ducktest.Rows(t, ducktest.Open(t), "SELECT _kafka.offset, error FROM "+ducktest.ReadParquet(dfiles...)+" ORDER BY 1") {
		if (d[0] != "6" && d[0] != "7") || !strings.Contains(d[1], "incompatible schema") || !strings.Contains(d[1], "reserved") {
			t.Errorf("dead letter %v, want offsets 6 and 7, incompatible, naming the reservation", d)
		}
		t.Logf("dead letter: %s", d[1])
	}
}
