package writer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// TestDirectMatchesTwoPass writes records of every differential table (and
// of AdImpression partitioned by the Kafka timestamp, and by a field, whose
// records decode their message fields in one pass) once with the one-pass
// decode and once with scan and emit only: generated records and
// the same rewritten by mutate (fields reordered, duplicated, dropped,
// merged, packed and unpacked, raw bytes appended). Each record must get
// the same error or none from both, and the files must be byte-identical.
// The one-pass decode must take the plain records itself and hand some
// rewritten ones (a field seen twice) to the two passes.
func TestDirectMatchesTwoPass(t *testing.T) {
	tables := append(differentialTables(t),
		adTable(t, schema.Options{Partitions: []string{"hour(_kafka.timestamp)"}}),
		adTable(t, schema.Options{Partitions: []string{"day(event_time)"}}))
	ctx := context.Background()
	var plainTwoPass, mutatedTwoPass, mutated int64
	for i, tab := range tables {
		md := tab.Plan.Message
		g := &gen{r: rand.New(rand.NewPCG(uint64(i), 16)), maxDepth: 3}
		r := rand.New(rand.NewPCG(uint64(i), 17))
		var plain, recs [][]byte
		for range 100 {
			base, err := proto.MarshalOptions{Deterministic: true}.Marshal(g.message(md, 0))
			if err != nil {
				continue
			}
			ops := make([]byte, 2+2*r.IntN(6))
			for j := range ops {
				ops[j] = byte(r.Uint32())
			}
			plain = append(plain, base)
			recs = append(recs, mutate(md, base, ops, 0))
			if md.FullName() == "adtrack.v1.AdImpression" {
				recs = append(recs, seenTwice(base, r)...)
			}
		}
		one, st1 := newWriterFor(t, tab)
		two, st2 := newWriterFor(t, tab)
		two.direct, two.nested = false, false
		// All but the last table (partitioned by a field) decode in one
		// pass from the top; that one below its top level (nested).
		if last := i == len(tables)-1; one.direct == last || !one.nested {
			t.Fatalf("%s: one pass from the top %v, below it %v; want %v, true", md.FullName(), one.direct, one.nested, !last)
		}
		write := func(what string, msgs [][]byte) {
			for j, m := range msgs {
				k := Kafka{Topic: "t", Offset: int64(j), Timestamp: time.UnixMilli(1_790_000_000_000 + int64(j)*600_000)}
				e1, e2 := one.Write(ctx, m, k), two.Write(ctx, m, k)
				if fmt.Sprint(e1) != fmt.Sprint(e2) {
					t.Errorf("%s: %s record %d: one pass: %v; two passes: %v", md.FullName(), what, j, e1, e2)
				}
			}
		}
		write("plain", plain)
		plainTwoPass += one.dec.twoPass
		before := one.dec.twoPass
		write("rewritten", recs)
		mutatedTwoPass += one.dec.twoPass - before
		mutated += int64(len(recs))
		f1, err1 := one.Flush(ctx)
		f2, err2 := two.Flush(ctx)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: flush: %v, %v", md.FullName(), err1, err2)
		}
		if len(f1) != len(f2) {
			t.Fatalf("%s: %d files in one pass, %d in two", md.FullName(), len(f1), len(f2))
		}
		for j := range f1 {
			if b1, b2 := readStored(t, st1, f1[j].Path), readStored(t, st2, f2[j].Path); !bytes.Equal(b1, b2) {
				t.Errorf("%s: file %d (%s) differs: %d bytes in one pass, %d in two", md.FullName(), j, f1[j].Path, len(b1), len(b2))
			}
		}
	}
	if plainTwoPass != 0 {
		t.Errorf("%d generated records were decoded in two passes, want none", plainTwoPass)
	}
	if mutatedTwoPass == 0 || mutatedTwoPass == mutated {
		t.Errorf("%d of %d rewritten records were decoded in two passes, want some", mutatedTwoPass, mutated)
	}
	t.Logf("%d tables; %d of %d rewritten records decoded in two passes", len(tables), mutatedTwoPass, mutated)
}

// seenTwice returns AdImpression records that the one-pass decode must
// hand to the two passes: base followed by a second member of the pricing
// oneof, by campaign_id again, by a second device (a message that merges).
func seenTwice(base []byte, r *rand.Rand) [][]byte {
	v := uint64(r.IntN(1000))
	return [][]byte{
		protowire.AppendVarint(protowire.AppendTag(slices.Clone(base), 17, protowire.VarintType), v),
		protowire.AppendFixed64(protowire.AppendTag(slices.Clone(base), 18, protowire.Fixed64Type), v),
		protowire.AppendString(protowire.AppendTag(slices.Clone(base), 19, protowire.BytesType), fmt.Sprint("rule-", v)),
		protowire.AppendString(protowire.AppendTag(slices.Clone(base), 3, protowire.BytesType), fmt.Sprint("campaign-", v)),
		protowire.AppendBytes(protowire.AppendTag(slices.Clone(base), 7, protowire.BytesType),
			protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), fmt.Sprint("os-", v))),
	}
}

func newWriterFor(t *testing.T, tab *schema.Table) (*Writer, *mem.Store) {
	t.Helper()
	st := mem.New()
	w, err := NewTable(Config{}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

// TestAppendTime: the cached day and hour texts equal appendTransformTime's
// for times on both sides of 1970 and of day and hour boundaries, in an
// order that hits and misses the cache.
func TestAppendTime(t *testing.T) {
	w := &Writer{}
	r := rand.New(rand.NewPCG(1, 2))
	base := []int64{-86_400_000_001, -86_400_000_000, -3_600_000_001, -1, 0, 1, 3_599_999_999, 3_600_000_000, 86_399_999_999, 86_400_000_000, 1_790_000_000_000_000}
	for i := range 2000 {
		us := base[r.IntN(len(base))] + int64(r.IntN(3)-1)*int64(r.IntN(1000))
		if i%7 == 0 {
			us = r.Int64N(1<<50) - 1<<49
		}
		ts := time.UnixMicro(us).UTC()
		for col, tr := range []schema.Transform{schema.Day, schema.Hour} {
			got, want := w.appendTime(nil, col, tr, ts), appendTransformTime(nil, tr, ts)
			if string(got) != string(want) {
				t.Fatalf("%v of %d µs: %q, want %q", tr, us, got, want)
			}
		}
	}
}

// mergedRecords returns n generated AdImpression records, one in every
// (on average) followed by a second campaign_id or a second device (a
// message merged into it): the one-pass decode hands those that had the
// field already to the two passes.
func mergedRecords(t *testing.T, md protoreflect.MessageDescriptor, n, every int) [][]byte {
	t.Helper()
	g := &gen{r: rand.New(rand.NewPCG(1, 16)), maxDepth: 3}
	r := rand.New(rand.NewPCG(1, 17))
	var recs [][]byte
	for len(recs) < n {
		base, err := proto.MarshalOptions{Deterministic: true}.Marshal(g.message(md, 0))
		if err != nil {
			continue
		}
		if r.IntN(every) != 0 {
			recs = append(recs, base)
			continue
		}
		recs = append(recs, seenTwice(base, r)[3+len(recs)%2])
	}
	return recs
}

// TestDirectMergedStream writes a stream of records that mostly fall back
// (merged messages) with a one-pass writer and a two-pass one, with
// MaxBytes small enough to cut several files: the files must be the same,
// so a rolled-back record must leave nothing counted towards MaxBytes (the
// first page's PLAIN size, column.firstPlain). Without a dictionary and
// with small pages, the rollbacks also cross many pages of PLAIN byte
// arrays and repeated columns (column.mark), and with fewer of them the
// mark of an earlier page is stale.
func TestDirectMergedStream(t *testing.T) {
	tab := adTable(t, schema.Options{})
	dense := mergedRecords(t, tab.Plan.Message, 3000, 1)
	sparse := mergedRecords(t, tab.Plan.Message, 3000, 20)
	ctx := context.Background()
	for i, cfg := range []Config{{MaxBytes: 200 << 10, PageBytes: 1 << 20}, {MaxBytes: 300 << 10, PageBytes: 4 << 10, NoDictionary: true}, {PageRows: 40, NoDictionary: true}} {
		recs, minFiles, wantTwoPass := dense, 3, int64(len(dense)/2)
		if i == 2 {
			// A page's last rollback early in it and the next page's first
			// later in that page: a mark of the old page must not be used.
			recs, minFiles, wantTwoPass = sparse, 1, int64(len(sparse)/40)
		}
		one, st1 := newWriterCfg(t, cfg, tab)
		two, st2 := newWriterCfg(t, cfg, tab)
		two.direct, two.nested = false, false
		for j, m := range recs {
			k := Kafka{Topic: "t", Offset: int64(j), Timestamp: time.UnixMilli(1_790_000_000_000)}
			e1, e2 := one.Write(ctx, m, k), two.Write(ctx, m, k)
			if fmt.Sprint(e1) != fmt.Sprint(e2) {
				t.Fatalf("%+v: record %d: one pass: %v; two passes: %v", cfg, j, e1, e2)
			}
		}
		if one.dec.twoPass < wantTwoPass {
			t.Fatalf("%+v: %d of %d records fell back to two passes, want %d", cfg, one.dec.twoPass, len(recs), wantTwoPass)
		}
		f1, err1 := one.Flush(ctx)
		f2, err2 := two.Flush(ctx)
		if err1 != nil || err2 != nil {
			t.Fatalf("%+v: flush: %v, %v", cfg, err1, err2)
		}
		if len(f1) != len(f2) || len(f2) < minFiles {
			t.Fatalf("%+v: %d files in one pass, %d in two (want the same, at least %d)", cfg, len(f1), len(f2), minFiles)
		}
		for j := range f1 {
			if b1, b2 := readStored(t, st1, f1[j].Path), readStored(t, st2, f2[j].Path); !bytes.Equal(b1, b2) {
				t.Errorf("%+v: file %d differs: %d bytes (%d rows) in one pass, %d (%d rows) in two", cfg, j, len(b1), f1[j].Rows, len(b2), f2[j].Rows)
			}
		}
	}
}

// TestRollbackWalk: rolling back a record counts the rolled-back row's
// entries, not the page's. Most records of the stream fall back, in one
// page per column (PageBytes and PageRows large); rollback may count each
// committed entry of a repeated column, and each committed value of a PLAIN
// byte-array column, about once over the whole stream (from its mark), and
// counting from the page start instead walks about rows²/2 of them.
func TestRollbackWalk(t *testing.T) {
	tab := adTable(t, schema.Options{})
	recs := mergedRecords(t, tab.Plan.Message, 2000, 1)
	ctx := context.Background()
	w, _ := newWriterCfg(t, Config{PageBytes: 64 << 20, PageRows: 1 << 20, NoDictionary: true}, tab)
	for j, m := range recs {
		if err := w.Write(ctx, m, Kafka{Topic: "t", Offset: int64(j), Timestamp: time.UnixMilli(1_790_000_000_000)}); err != nil {
			t.Fatal(err)
		}
	}
	if 2*w.dec.twoPass < int64(len(recs)) {
		t.Fatalf("%d of %d records fell back, want most", w.dec.twoPass, len(recs))
	}
	var walked, entries int
	var repeated, plain bool
	for _, f := range w.files {
		for _, c := range f.cols {
			if c.pageFirstRow != 0 {
				t.Fatalf("%s: a page was cut at row %d; the test wants one page", c.spec.path, c.pageFirstRow)
			}
			walked += c.mark.walked
			if c.spec.maxRep > 0 {
				entries += len(c.reps)
				repeated = repeated || len(c.reps) > len(recs)
			}
			if c.spec.kind == parquet.ByteArray && !c.dictMode {
				entries += c.nvals
				plain = plain || c.nvals >= len(recs)
			}
		}
	}
	if !repeated || !plain {
		t.Fatalf("want repeated and PLAIN byte-array columns: %v, %v", repeated, plain)
	}
	// Each rollback may count one row's entries again (the row start it
	// stops at is re-checked): allow 2x.
	if walked > 2*entries {
		t.Errorf("rollbacks counted %d entries; the page holds %d (%d of %d records rolled back)", walked, entries, w.dec.twoPass, len(recs))
	}
	t.Logf("rollbacks counted %d entries; the page holds %d", walked, entries)
}

func newWriterCfg(t *testing.T, cfg Config, tab *schema.Table) (*Writer, *mem.Store) {
	t.Helper()
	st := mem.New()
	w, err := NewTable(cfg, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}
