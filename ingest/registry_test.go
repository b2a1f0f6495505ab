package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/registry"
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

// shopRegistry is where a registry test registers its schemas: srShop in
// the fast tier, a real registry server in the interop tier.
type shopRegistry interface {
	URL() string
	// register registers text under subject (with the Money reference
	// when it imports it) and returns its id and the compiled schema.
	register(subject, text string) (int, *registry.Schema)
}

var _ shopRegistry = (*srShop)(nil)

func (s *srShop) register(subject, text string) (int, *registry.Schema) {
	s.t.Helper()
	id, _, err := s.RegisterSchema(subject, shopSchema(text))
	if err != nil {
		s.t.Fatal(err)
	}
	return id, compiledSchema(s.t, s.URL(), id)
}

// shopSchema is text as the registry tests register it: protobuf, with the
// Money reference when it imports money.proto.
func shopSchema(text string) sr.Schema {
	sch := sr.Schema{Schema: text, Type: sr.TypeProtobuf}
	if strings.Contains(text, "money.proto") {
		sch.References = []sr.SchemaReference{{Name: "shop/common/money.proto", Subject: "shop.common.money", Version: 1}}
	}
	return sch
}

// compiledSchema is schema id as protolake's registry client reads it
// from the registry at url.
func compiledSchema(t *testing.T, url string, id int) *registry.Schema {
	t.Helper()
	cl, err := registry.New(registry.Config{URL: url}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := cl.Schema(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return compiled
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

// runStreaming runs a Runner with the test logger and fastGroup (under the
// caller's KafkaOpts) until stop is called.
func runStreaming(t *testing.T, cfg ingest.Config, opts ingest.Options) *running {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	opts.KafkaOpts = append(fastGroup(), opts.KafkaOpts...) // the caller's win
	return startRunner(context.Background(), t, cfg, opts)
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
