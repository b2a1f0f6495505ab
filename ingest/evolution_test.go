package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/schema"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

func orderDescriptor(t *testing.T, v string) (protoreflect.MessageDescriptor, string) {
	t.Helper()
	path := filepath.Join(repoRoot(t), "testdata/proto/evolution", v, "order.binpb")
	files, err := schema.ReadDescriptorSet(path)
	if err != nil {
		t.Fatal(err)
	}
	md, err := schema.FindMessage(files, "shop.Order", path)
	if err != nil {
		t.Fatal(err)
	}
	return md, path
}

// order builds a shop.Order of the given descriptor: field 1 order_id,
// field 3 customer_id (buyer_id in v2) and, in v2, shipping.carrier.
// sendOrders produces n orders of md to "orders", numbered from from.
func sendOrders(t *testing.T, p *kgo.Client, md protoreflect.MessageDescriptor, from, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: "orders", Value: order(t, md, i)})
	}
	if err := p.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func order(t *testing.T, md protoreflect.MessageDescriptor, i int) []byte {
	m := dynamicpb.NewMessage(md)
	f := md.Fields()
	m.Set(f.ByNumber(1), protoreflect.ValueOfString(fmt.Sprintf("o-%05d", i)))
	m.Set(f.ByNumber(3), protoreflect.ValueOfString(fmt.Sprintf("c-%d", i%7)))
	if sf := f.ByNumber(9); sf != nil {
		sh := m.Mutable(sf).Message()
		sh.Set(sf.Message().Fields().ByName("carrier"), protoreflect.ValueOfString("ups"))
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEvolution writes shop.Order v1, then restarts with the compatible v2
// while v2 messages arrive: the next commit carries the merged schema (new
// columns, renamed field keeping its column, removed-but-reserved field kept)
// and the new proto pin, and every row of both versions reads back. Then the
// breaking v3 is refused at start with the diff.
func TestEvolution(t *testing.T) {
	const n = 300
	c := startKafka(t, 3, "orders")
	p := producer(t, c)
	v1, v1path := orderDescriptor(t, "v1")
	v2, v2path := orderDescriptor(t, "v2")
	send := func(md protoreflect.MessageDescriptor, from int) { sendOrders(t, p, md, from, n) }
	dir := tempDir(t)
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	cfg.Tables[0] = ingest.TableConfig{Name: "orders", URI: filepath.Join(dir, "orders"), Topics: []string{"orders"}, Message: "shop.Order",
		DescriptorSet: v1path, ProtoVersion: "v1", Flush: ingest.FlushConfig{CommitInterval: 300 * time.Millisecond}}
	send(v1, 0)
	runUntilCaughtUp(t, cfg, ingest.Options{})

	// An instance still on v1 (opened before the upgrade) keeps running
	// during the rolling deploy; it runs below, after v2 evolved the table.
	cfgV1 := cfg
	cfgV1.Tables = append([]ingest.TableConfig(nil), cfg.Tables...)
	old, err := ingest.NewRunner(context.Background(), cfgV1, ingest.Options{UntilCaughtUp: true, Logger: testLogger(t), KafkaOpts: fastGroup()})
	if err != nil {
		t.Fatal(err)
	}

	send(v2, n)
	cfg.Tables[0].DescriptorSet, cfg.Tables[0].ProtoVersion = v2path, "v2"
	var evolved []ingest.CommitEvent
	runUntilCaughtUp(t, cfg, ingest.Options{OnCommit: func(e ingest.CommitEvent) {
		if e.Evolved {
			evolved = append(evolved, e)
		}
	}})
	if len(evolved) != 1 || evolved[0].Rows != n {
		t.Errorf("evolving commits: %+v, want one with the %d v2 rows", evolved, n)
	}
	files, snap := tableFiles(t, filepath.Join(dir, "orders"))
	fp2, _ := schema.Fingerprint(v2)
	if pin := commitlog.PinOf(snap.Metadata()); pin.Fingerprint != fp2 || pin.Version != "v2" {
		t.Errorf("proto pin after v2 = %+v, want fingerprint %s version v2", pin, fp2)
	}
	cols, err := commitlog.SchemaFieldNames(snap.Metadata().SchemaString)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"customer_id", "coupon", "shipping", "notes"} {
		found := false
		for _, c := range cols {
			found = found || c == want
		}
		if !found {
			t.Errorf("merged schema lacks column %q: %v", want, cols)
		}
	}
	db := ducktest.Open(t)
	// union_by_name: v1 files lack the new columns, which read as NULL.
	src := strings.TrimSuffix(ducktest.ReadParquet(files...), ")") + ", union_by_name=true)"
	got := ducktest.Rows(t, db, "SELECT count(*), count(DISTINCT order_id), count(shipping.carrier), count(DISTINCT customer_id), min(order_id), max(order_id) FROM "+src)
	want := []string{fmt.Sprint(2 * n), fmt.Sprint(2 * n), fmt.Sprint(n), "7", "o-00000", fmt.Sprintf("o-%05d", 2*n-1)}
	if fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Errorf("DuckDB reads %v, want %v", got[0], want)
	}

	// The v1 instance commits more v1 rows: the table keeps the v2 schema
	// and pin (merged, never reverted).
	send(v1, 2*n)
	if err := old.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, snap = tableFiles(t, filepath.Join(dir, "orders"))
	if pin := commitlog.PinOf(snap.Metadata()); pin.Fingerprint != fp2 {
		t.Errorf("an instance on v1 re-pinned the table to %+v", pin)
	}
	if cols2, _ := commitlog.SchemaFieldNames(snap.Metadata().SchemaString); fmt.Sprint(cols2) != fmt.Sprint(cols) {
		t.Errorf("an instance on v1 changed the columns from %v to %v", cols, cols2)
	}
	src = strings.TrimSuffix(ducktest.ReadParquet(files...), ")") + ", union_by_name=true)"
	if got := ducktest.Rows(t, db, "SELECT count(*), count(DISTINCT order_id) FROM "+src); fmt.Sprint(got[0]) != fmt.Sprint([]string{fmt.Sprint(3 * n), fmt.Sprint(3 * n)}) {
		t.Errorf("after the v1 instance: %v rows, want %d", got[0], 3*n)
	}

	// Breaking: v3 changes types and cardinalities; the Runner refuses to
	// start and names the changes.
	_, v3path := orderDescriptor(t, "v3")
	cfg.Tables[0].DescriptorSet, cfg.Tables[0].ProtoVersion = v3path, "v3"
	_, err = ingest.NewRunner(context.Background(), cfg, ingest.Options{})
	var ie *schema.IncompatibleError
	if !errors.As(err, &ie) || len(ie.Changes) == 0 {
		t.Fatalf("NewRunner with v3 = %v, want a *schema.IncompatibleError", err)
	}
	if !strings.Contains(err.Error(), "tables.0") {
		t.Errorf("error does not name the table config: %v", err)
	}
	t.Logf("v3 refused: %v", err)
	if _, snap3 := tableFiles(t, filepath.Join(dir, "orders")); snap3.Version() != snap.Version() {
		t.Errorf("refused start changed the table")
	}
}

// TestOlderVersionStarts: after v2 evolved the table, an instance on v1 (a
// rollback, or an old replica restarting mid-rollout) starts — it used to be
// refused with "field removed … add reserved 9" — and writes the fields it
// knows: DuckDB reads its rows with nulls in v2's columns, and the table
// keeps v2's schema and pin.
func TestOlderVersionStarts(t *testing.T) {
	const n = 200
	c := startKafka(t, 2, "orders")
	p := producer(t, c)
	v1, v1path := orderDescriptor(t, "v1")
	v2, v2path := orderDescriptor(t, "v2")
	send := func(md protoreflect.MessageDescriptor, from int) { sendOrders(t, p, md, from, n) }
	dir := tempDir(t)
	uri := filepath.Join(dir, "orders")
	cfg := baseConfig(t, c.ListenAddrs(), dir)
	cfg.Tables[0] = ingest.TableConfig{Name: "orders", URI: uri, Topics: []string{"orders"}, Message: "shop.Order",
		DescriptorSet: v1path, ProtoVersion: "v1", Flush: ingest.FlushConfig{CommitInterval: 300 * time.Millisecond}}
	send(v1, 0)
	runUntilCaughtUp(t, cfg, ingest.Options{})
	cfgV2 := cfg
	cfgV2.Tables = append([]ingest.TableConfig(nil), cfg.Tables...)
	cfgV2.Tables[0].DescriptorSet, cfgV2.Tables[0].ProtoVersion = v2path, "v2"
	send(v2, n)
	runUntilCaughtUp(t, cfgV2, ingest.Options{})
	_, snap := tableFiles(t, uri)
	schemaV2 := snap.Metadata().SchemaString
	fp1, _ := schema.Fingerprint(v1)
	fp2, _ := schema.Fingerprint(v2)

	// v1 starts again on the v2 table.
	send(v1, 2*n)
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var commits []ingest.CommitEvent
	runUntilCaughtUp(t, cfg, ingest.Options{Logger: logger, OnCommit: func(e ingest.CommitEvent) { commits = append(commits, e) }})
	if !strings.Contains(logs.String(), "older proto version") || !strings.Contains(logs.String(), "tableFingerprint="+fp2) {
		t.Errorf("no INFO about the older version:\n%s", logs.String())
	}
	var rows int64
	for _, e := range commits {
		rows += e.Rows
		if e.Evolved {
			t.Errorf("the v1 instance changed the table's metadata at version %d", e.Version)
		}
	}
	if rows != n {
		t.Errorf("the v1 instance committed %d rows, want %d", rows, n)
	}
	files, snap := tableFiles(t, uri)
	if pin := commitlog.PinOf(snap.Metadata()); pin.Fingerprint != fp2 || pin.Version != "v2" {
		t.Errorf("pin after the v1 instance = %+v, want v2 (%s)", pin, fp2)
	}
	if snap.Metadata().SchemaString != schemaV2 {
		t.Errorf("the v1 instance changed the schema:\n%s\nwas\n%s", snap.Metadata().SchemaString, schemaV2)
	}
	v1Files := 0
	for _, a := range snap.Files() {
		if a.Tags[commitlog.TagProtoFingerprint] == fp1 {
			v1Files++
		}
	}
	if v1Files == 0 {
		t.Error("no file tagged with v1's fingerprint")
	}

	db := ducktest.Open(t)
	src := strings.TrimSuffix(ducktest.ReadParquet(files...), ")") + ", union_by_name=true)"
	var cols []string
	for _, r := range ducktest.Rows(t, db, "SELECT column_name FROM (DESCRIBE SELECT * FROM "+src+")") {
		cols = append(cols, r[0])
	}
	col := func(name string) int {
		i := slices.Index(cols, name)
		if i < 0 {
			t.Fatalf("DuckDB sees no column %s: %v", name, cols)
		}
		return i
	}
	id, cust, ship, notes := col("order_id"), col("customer_id"), col("shipping"), col("notes")
	got := ducktest.Rows(t, db, "SELECT * FROM "+src+" ORDER BY order_id")
	if len(got) != 3*n {
		t.Fatalf("DuckDB reads %d rows, want %d", len(got), 3*n)
	}
	for i, r := range got {
		if want := fmt.Sprintf("o-%05d", i); r[id] != want {
			t.Fatalf("row %d: order_id %s, want %s", i, r[id], want)
		}
		if want := fmt.Sprintf("c-%d", i%7); r[cust] != want {
			t.Errorf("row %d: customer_id %s, want %s", i, r[cust], want)
		}
		v2row := i >= n && i < 2*n
		if gotNull := r[ship] == "NULL"; gotNull == v2row {
			t.Errorf("row %d (v2 row: %v): shipping = %s", i, v2row, r[ship])
		}
		if !v2row && r[notes] != "NULL" {
			t.Errorf("row %d, written by v1: notes = %s, want NULL", i, r[notes])
		}
	}
}
