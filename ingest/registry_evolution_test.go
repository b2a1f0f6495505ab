package ingest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/local"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

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
	rowsOf := func() int64 { return run.Stats()[0].RowsCommitted }
	deadOf := func() int64 { return run.Stats()[0].DeadLetters }

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
