package writer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/internal/partpath"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

func adTable(t testing.TB, opts schema.Options) *schema.Table {
	return deriveTable(t, "adtrack/v1/adtrack.binpb", "adtrack.v1.AdImpression", opts)
}

func writeAll(t testing.TB, w *Writer, msgs [][]byte) []File {
	t.Helper()
	ctx := context.Background()
	for i, m := range msgs {
		if err := w.Write(ctx, m, Kafka{Topic: "ads", Partition: 2, Offset: int64(i), Timestamp: time.UnixMilli(1_790_000_000_000 + int64(i)*1000)}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestDuckDBLogicalTypes(t *testing.T) {
	st := mem.New()
	w, err := NewTable(Config{}, adTable(t, schema.Options{}), st)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := benchCorpus()
	paths := export(t, st, writeAll(t, w, msgs[:100]))
	db := ducktest.Open(t)
	got := map[string]string{}
	for _, r := range ducktest.Rows(t, db, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+ducktest.ReadParquet(paths...)+")") {
		got[r[0]] = r[1]
	}
	want := map[string]string{
		"segments":          "VARCHAR[]",
		"labels":            "MAP(VARCHAR, VARCHAR)",
		"event_time":        "TIMESTAMP WITH TIME ZONE",
		"user_id_hash":      "DECIMAL(20,0)",
		"advertiser_id":     "BIGINT",
		"frequency_caps":    "INTEGER[]",
		"sampling_rate_ppm": "BIGINT",
		"viewability_score": "FLOAT",
		"is_test":           "BOOLEAN",
		"trace_context":     "BLOB",
		"render_time":       "BIGINT",
	}
	for col, typ := range want {
		if got[col] != typ {
			t.Errorf("DuckDB type of %s = %q, want %q", col, got[col], typ)
		}
	}
	if !strings.HasPrefix(got["_kafka"], "STRUCT(topic VARCHAR, \"partition\" INTEGER, \"offset\" BIGINT, \"timestamp\" TIMESTAMP WITH TIME ZONE)") {
		t.Errorf("_kafka type = %q", got["_kafka"])
	}
	if !strings.HasPrefix(got["bids"], "STRUCT(") || !strings.HasSuffix(got["bids"], "[]") {
		t.Errorf("bids type = %q, want a list of structs", got["bids"])
	}
}

// TestStatsMatchDuckDB compares the returned Delta statistics with what
// DuckDB computes over the file.
func TestStatsMatchDuckDB(t *testing.T) {
	st := mem.New()
	w, err := NewTable(Config{PageBytes: 8 << 10}, adTable(t, schema.Options{}), st)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := benchCorpus()
	files := writeAll(t, w, msgs[:5000])
	if len(files) != 1 {
		t.Fatalf("%d files", len(files))
	}
	f := files[0]
	paths := export(t, st, files)
	db := ducktest.Open(t)
	from := ducktest.ReadParquet(paths...)
	if got := ducktest.Rows(t, db, "SELECT count(*) FROM "+from)[0][0]; got != fmt.Sprint(*f.Stats.NumRecords) {
		t.Errorf("numRecords = %d, DuckDB count = %s", *f.Stats.NumRecords, got)
	}
	checked := 0
	var walk func(prefix string, nulls, mins, maxs map[string]any)
	walk = func(prefix string, nulls, mins, maxs map[string]any) {
		for name, nc := range nulls {
			col := prefix + `"` + name + `"`
			if sub, ok := nc.(map[string]any); ok {
				m1, _ := mins[name].(map[string]any)
				m2, _ := maxs[name].(map[string]any)
				walk(col+".", sub, m1, m2)
				continue
			}
			r := ducktest.Rows(t, db, fmt.Sprintf("SELECT count(*) - count(%s), min(%s), max(%s), typeof(min(%s)) FROM %s", col, col, col, col, from))[0]
			if fmt.Sprint(nc) != r[0] {
				t.Errorf("nullCount of %s = %v, DuckDB %s", col, nc, r[0])
			}
			checked++
			mn, ok := mins[name]
			if !ok {
				continue
			}
			mx := maxs[name]
			wantMin, wantMax := r[1], r[2]
			switch {
			case strings.HasPrefix(r[3], "TIMESTAMP"):
				q := fmt.Sprintf("SELECT strftime(min(%s), '%%Y-%%m-%%dT%%H:%%M:%%S.%%gZ'), strftime(max(%s), '%%Y-%%m-%%dT%%H:%%M:%%S.%%gZ') FROM %s", col, col, from)
				tr := ducktest.Rows(t, db, q)[0]
				wantMin, wantMax = tr[0], tr[1]
			case r[3] == "VARCHAR":
				wantMin, _ = truncString(wantMin, false)
				wantMax, _ = truncString(wantMax, true)
			}
			if fmt.Sprint(mn) != wantMin || fmt.Sprint(mx) != wantMax {
				t.Errorf("min/max of %s = %v/%v, DuckDB %s/%s", col, mn, mx, wantMin, wantMax)
			}
		}
	}
	walk("", f.Stats.NullCount, f.Stats.MinValues, f.Stats.MaxValues)
	if checked < 32 {
		t.Errorf("checked %d stats columns, want 32", checked)
	}
	if _, err := f.Stats.JSON(); err != nil {
		t.Error(err)
	}
}

// TestRollback interleaves bad messages with good ones: the file holds
// exactly the good rows, identical to a file written from the good ones.
func TestRollback(t *testing.T) {
	msgs, _ := benchCorpus()
	good := msgs[:400]
	r := rand.New(rand.NewPCG(1, 2))
	var mixed [][]byte
	bad := 0
	for _, m := range good {
		mixed = append(mixed, m)
		if r.IntN(3) == 0 {
			b := badMessage(r, m)
			mixed = append(mixed, b)
			bad++
		}
	}
	tab := adTable(t, schema.Options{})
	stA, stB := mem.New(), mem.New()
	wa, _ := NewTable(Config{PageBytes: 2048}, tab, stA)
	wb, _ := NewTable(Config{PageBytes: 2048}, tab, stB)
	ctx := context.Background()
	off := 0
	failed := 0
	for _, m := range mixed {
		err := wa.Write(ctx, m, Kafka{Topic: "ads", Offset: int64(off), Timestamp: time.UnixMilli(int64(off))})
		var de *DecodeError
		if err != nil {
			if !errors.As(err, &de) {
				t.Fatalf("non-decode error: %v", err)
			}
			failed++
			continue
		}
		off++
	}
	if failed != bad {
		t.Fatalf("%d messages failed, %d were bad", failed, bad)
	}
	fa, _ := wa.Flush(ctx)
	fb := writeAllKafka(t, wb, good)
	qa := "SELECT * EXCLUDE (_kafka), _kafka.offset FROM " + ducktest.ReadParquet(export(t, stA, fa)...) + " ORDER BY _kafka.offset"
	qb := "SELECT * EXCLUDE (_kafka), _kafka.offset FROM " + ducktest.ReadParquet(export(t, stB, fb)...) + " ORDER BY _kafka.offset"
	db := ducktest.Open(t)
	ra, rb := ducktest.Rows(t, db, qa), ducktest.Rows(t, db, qb)
	if len(ra) != len(good) || fmt.Sprint(ra) != fmt.Sprint(rb) {
		t.Fatalf("rows with bad messages interleaved differ from the good rows (%d vs %d rows)", len(ra), len(rb))
	}
	if *fa[0].Stats.NumRecords != int64(len(good)) {
		t.Errorf("numRecords %d", *fa[0].Stats.NumRecords)
	}
	sa, _ := fa[0].Stats.JSON()
	sb, _ := fb[0].Stats.JSON()
	if sa != sb {
		t.Errorf("stats differ:\n%s\n%s", sa, sb)
	}
}

func writeAllKafka(t testing.TB, w *Writer, msgs [][]byte) []File {
	t.Helper()
	ctx := context.Background()
	for i, m := range msgs {
		if err := w.Write(ctx, m, Kafka{Topic: "ads", Offset: int64(i), Timestamp: time.UnixMilli(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// badMessage corrupts a good message so that decoding must fail late (after
// many columns got values): a bad tail field.
func badMessage(r *rand.Rand, m []byte) []byte {
	b := append([]byte(nil), m...)
	switch r.IntN(6) {
	case 4: // invalid UTF-8 late in the row, after the lists and maps
		b = protowire.AppendTag(b, 26, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte("consent\xff"))
	case 5: // a bad element in the middle of a list of structs
		bid := protowire.AppendTag(nil, 1, protowire.BytesType)
		bid = protowire.AppendBytes(bid, []byte("ok"))
		bid = protowire.AppendTag(bid, 5, protowire.BytesType)
		bid = protowire.AppendBytes(bid, []byte{'d', 0xc0})
		b = protowire.AppendTag(b, 12, protowire.BytesType)
		b = protowire.AppendBytes(b, bid)
	case 0: // truncated length-delimited field at the end
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, 50)
		b = append(b, "short"...)
	case 1: // invalid UTF-8 in a nested string (device.os)
		dev := protowire.AppendTag(nil, 2, protowire.BytesType)
		dev = protowire.AppendBytes(dev, []byte{0xff, 0xfe})
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, dev)
	case 2: // varint overflow
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
	case 3: // invalid timestamp in bids[].latency? use event_time nanos out of range
		ts := protowire.AppendTag(nil, 2, protowire.VarintType)
		ts = protowire.AppendVarint(ts, 2_000_000_000)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, ts)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	tab := adTable(t, schema.Options{})
	good, _ := proto.Marshal(&adtrackpb.AdImpression{ImpressionId: "x", Device: &adtrackpb.Device{Os: "ios"}})
	nested := func(depth int) []byte { // Struct values nested depth times
		v := structpb.NewStringValue("leaf")
		for range depth {
			v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		}
		s := &structpb.Struct{Fields: map[string]*structpb.Value{"k": v}}
		b, _ := proto.Marshal(&adtrackpb.AdImpression{Custom: s})
		return b
	}
	cases := []struct {
		name   string
		msg    []byte
		path   string
		offset int
		is     error
	}{
		{"truncated tag", append(append([]byte{}, good...), 0x80), "", len(good), ErrTruncated},
		{"truncated bytes", append(append([]byte{}, good...), 0x0a, 0x05, 'a'), "impression_id", len(good) + 1, ErrTruncated},
		{"varint overflow", append(append([]byte{}, good...), 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "advertiser_id", len(good) + 1, ErrTruncated},
		{"invalid utf-8", protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("ok\xff")), "impression_id", 2, ErrInvalidUTF8},
		{"nested invalid utf-8", func() []byte {
			dev := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte{0xc3})
			return protowire.AppendBytes(protowire.AppendTag(append([]byte{}, good...), 7, protowire.BytesType), dev)
		}(), "device.os", len(good) + 4, ErrInvalidUTF8},
		{"bad timestamp", func() []byte {
			b, _ := proto.Marshal(&adtrackpb.AdImpression{EventTime: &timestamppb.Timestamp{Seconds: 1 << 50}})
			return b
		}(), "event_time", 0, ErrInvalidValue},
		{"nesting deeper than 100", nested(120), "custom", 0, ErrInvalidValue},
		{"end group without start", append(append([]byte{}, good...), 0x0c), "", len(good), ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, _ := NewTable(Config{}, tab, mem.New())
			err := w.Write(context.Background(), c.msg, Kafka{})
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DecodeError", err)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("err = %v, want %v", err, c.is)
			}
			if de.Path != c.path {
				t.Errorf("path = %q, want %q (%v)", de.Path, c.path, err)
			}
			if c.offset > 0 && de.Offset != c.offset {
				t.Errorf("offset = %d, want %d (%v)", de.Offset, c.offset, err)
			}
			if w.BufferedRows() != 0 {
				t.Errorf("%d rows buffered after a failed message", w.BufferedRows())
			}
			// The writer stays usable.
			if err := w.Write(context.Background(), good, Kafka{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPartitions(t *testing.T) {
	tab := adTable(t, schema.Options{Partitions: []string{"campaign_id", "day(event_time)"}})
	st := mem.New()
	w, err := NewTable(Config{}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	camps := []string{"a/b", "c=d", "plain", ""}
	for i := range 40 {
		m := &adtrackpb.AdImpression{ImpressionId: fmt.Sprint(i), CampaignId: camps[i%4]}
		if i%5 != 0 {
			m.EventTime = timestamppb.New(time.Date(2026, 11, 1+i%3, 12, 0, 0, 0, time.UTC))
		}
		b, _ := proto.Marshal(m)
		msgs = append(msgs, b)
	}
	files := writeAll(t, w, msgs)
	seen := map[string]bool{}
	total := int64(0)
	for _, f := range files {
		dir := f.Path[:strings.LastIndexByte(f.Path, '/')]
		seen[dir] = true
		total += f.Rows
		camp := f.PartitionValues["campaign_id"]
		day := f.PartitionValues["event_time_day"]
		wantDir := "campaign_id=" + partpath.Null + "/event_time_day="
		if camp != nil {
			wantDir = "campaign_id=" + partpath.Escape(*camp) + "/event_time_day="
		}
		if day == nil {
			wantDir += partpath.Null
		} else {
			wantDir += *day
		}
		if dir != wantDir {
			t.Errorf("file %s: dir %q, want %q", f.Path, dir, wantDir)
		}
		if !strings.HasSuffix(f.Path, ".c000.zstd.parquet") || !strings.Contains(f.Path, "/part-") {
			t.Errorf("file name %s", f.Path)
		}
		// The rows in the file belong to the partition.
		paths := export(t, st, []File{f})
		db := ducktest.Open(t)
		q := "SELECT count(*) FROM " + ducktest.ReadParquet(paths...) + " WHERE "
		if day == nil {
			q += "event_time IS NOT NULL"
		} else {
			q += fmt.Sprintf("strftime(event_time, '%%Y-%%m-%%d') <> '%s'", *day)
		}
		if got := ducktest.Rows(t, db, q)[0][0]; got != "0" {
			t.Errorf("%s: %s rows outside the partition", f.Path, got)
		}
		noHive := strings.TrimSuffix(ducktest.ReadParquet(paths...), ")") + ", hive_partitioning = false)"
		cols := ducktest.Rows(t, db, "SELECT count(*) FROM (DESCRIBE SELECT * FROM "+noHive+") WHERE column_name = 'campaign_id'")
		if cols[0][0] != "0" {
			t.Errorf("identity partition column is inside the file")
		}
	}
	if total != 40 {
		t.Errorf("%d rows in files, want 40", total)
	}
	for _, want := range []string{"campaign_id=a%2Fb/event_time_day=2026-11-02", "campaign_id=c%3Dd/event_time_day=" + partpath.Null, "campaign_id=" + partpath.Null + "/event_time_day=2026-11-02"} {
		if !seen[want] {
			t.Errorf("no file in %s; have %v", want, seen)
		}
	}
}

func TestFlushPolicy(t *testing.T) {
	tab := adTable(t, schema.Options{})
	msgs, _ := benchCorpus()
	ctx := context.Background()
	t.Run("max rows", func(t *testing.T) {
		st := mem.New()
		w, _ := NewTable(Config{MaxRows: 100}, tab, st)
		for i, m := range msgs[:250] {
			if err := w.Write(ctx, m, Kafka{Offset: int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		fin := w.TakeFinished()
		if len(fin) != 2 || fin[0].Rows != 100 || fin[1].Rows != 100 || w.BufferedRows() != 50 {
			t.Fatalf("finished %d files, %d rows buffered", len(fin), w.BufferedRows())
		}
		if lo, hi := kafkaOffsets(t, st, fin[1]); lo != 100 || hi != 199 {
			t.Errorf("second file holds offsets %d..%d, want 100..199", lo, hi)
		}
	})
	t.Run("max bytes", func(t *testing.T) {
		w, _ := NewTable(Config{MaxBytes: 256 << 10, PageBytes: 4 << 10}, tab, mem.New())
		for i, m := range msgs[:5000] {
			if err := w.Write(ctx, m, Kafka{Offset: int64(i)}); err != nil {
				t.Fatal(err)
			}
			// The size is checked every 16 rows: a few rows of slack.
			if w.BufferedBytes() >= 256<<10+16<<10 {
				t.Fatalf("buffered %d bytes, over the limit", w.BufferedBytes())
			}
		}
		fin := w.TakeFinished()
		if len(fin) < 2 {
			t.Fatalf("%d files finished", len(fin))
		}
		for _, f := range fin {
			if f.Size > 300<<10 {
				t.Errorf("file of %d bytes, max_bytes 256 KiB", f.Size)
			}
		}
	})
	t.Run("max age", func(t *testing.T) {
		w, _ := NewTable(Config{MaxAge: time.Minute}, tab, mem.New())
		now := time.Unix(1000, 0)
		w.now = func() time.Time { return now }
		_ = w.Write(ctx, msgs[0], Kafka{})
		now = now.Add(30 * time.Second)
		_ = w.FlushExpired(ctx)
		if len(w.TakeFinished()) != 0 {
			t.Fatal("flushed before max_age")
		}
		now = now.Add(31 * time.Second)
		_ = w.FlushExpired(ctx)
		if fin := w.TakeFinished(); len(fin) != 1 || fin[0].Rows != 1 {
			t.Fatalf("max_age flush: %d files", len(fin))
		}
	})
	t.Run("flush largest", func(t *testing.T) {
		ptab := adTable(t, schema.Options{Partitions: []string{"advertiser_id"}})
		w, _ := NewTable(Config{}, ptab, mem.New())
		for i, m := range msgs[:3000] {
			if err := w.Write(ctx, m, Kafka{Offset: int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		before, open := w.BufferedBytes(), w.OpenFiles()
		if err := w.FlushLargest(ctx, before/2); err != nil {
			t.Fatal(err)
		}
		if w.BufferedBytes() > before/2 || w.OpenFiles() >= open || len(w.TakeFinished()) == 0 {
			t.Fatalf("after FlushLargest: %d bytes buffered (was %d), %d open (was %d)", w.BufferedBytes(), before, w.OpenFiles(), open)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{MaxRows: -1}, {Compression: "brotli"}, {PageBytes: -1}, {MaxAge: -time.Second}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestCompressionCodecs(t *testing.T) {
	msgs, _ := benchCorpus()
	for _, c := range []Compression{CompressionZstd, CompressionSnappy, CompressionGzip, CompressionLZ4, CompressionNone} {
		t.Run(string(c), func(t *testing.T) {
			st := mem.New()
			w, err := NewTable(Config{Compression: c}, adTable(t, schema.Options{}), st)
			if err != nil {
				t.Fatal(err)
			}
			files := writeAll(t, w, msgs[:300])
			db := ducktest.Open(t)
			got := ducktest.Rows(t, db, "SELECT count(*), sum(advertiser_id) FROM "+ducktest.ReadParquet(export(t, st, files)...))
			if got[0][0] != "300" {
				t.Errorf("%v", got)
			}
		})
	}
}

func TestPartitionByKafkaHour(t *testing.T) {
	tab := adTable(t, schema.Options{Partitions: []string{"hour(_kafka.timestamp)"}})
	st := mem.New()
	w, err := NewTable(Config{}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := benchCorpus()
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 10, 59, 0, 0, time.UTC)
	for i, m := range msgs[:120] {
		if err := w.Write(ctx, m, Kafka{Topic: "ads", Offset: int64(i), Timestamp: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, f := range files {
		got[*f.PartitionValues["kafka_hour"]] += f.Rows
		if !strings.HasPrefix(f.Path, "kafka_hour="+partpath.Escape(*f.PartitionValues["kafka_hour"])+"/part-") {
			t.Errorf("path %s", f.Path)
		}
	}
	want := map[string]int64{"2026-11-02 10:00:00": 60, "2026-11-02 11:00:00": 60}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows per partition %v, want %v", got, want)
	}
}

func TestDiscard(t *testing.T) {
	msgs, _ := benchCorpus()
	st := mem.New()
	w, _ := NewTable(Config{MaxRows: 10}, adTable(t, schema.Options{}), st)
	ctx := context.Background()
	for i, m := range msgs[:25] {
		if err := w.Write(ctx, m, Kafka{Offset: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Discard()
	if w.BufferedRows() != 0 || w.OpenFiles() != 0 {
		t.Fatal("buffers left after Discard")
	}
	if err := w.Write(ctx, msgs[0], Kafka{Offset: 100}); err != nil {
		t.Fatal(err)
	}
	files, err := w.Flush(ctx)
	if err != nil || len(files) != 1 || files[0].Rows != 1 {
		t.Fatalf("after Discard: %v %+v", err, files)
	}
	if lo, _ := kafkaOffsets(t, st, files[0]); lo != 100 {
		t.Errorf("after Discard the file starts at offset %d, want 100", lo)
	}
}

// kafkaOffsets returns the smallest and largest _kafka.offset in file f of
// st, from its Parquet column statistics.
func kafkaOffsets(t *testing.T, st *mem.Store, f File) (lo, hi int64) {
	t.Helper()
	s := chunkMeta(t, readStored(t, st, f.Path), "_kafka", "offset").Statistics
	if len(s.MinValue) != 8 || len(s.MaxValue) != 8 {
		t.Fatalf("%s: no _kafka.offset min/max statistics", f.Path)
	}
	return int64(binary.LittleEndian.Uint64(s.MinValue)), int64(binary.LittleEndian.Uint64(s.MaxValue))
}

// TestSteadyStateAllocations: once a partition is open, writing a row
// allocates nothing (partition routing included).
func TestSteadyStateAllocations(t *testing.T) {
	msgs, _ := benchCorpus()
	for _, parts := range [][]string{nil, {"campaign_id", "day(event_time)"}, {"hour(_kafka.timestamp)"}} {
		t.Run(fmt.Sprint(parts), func(t *testing.T) {
			w, err := NewTable(Config{}, adTable(t, schema.Options{Partitions: parts}), mem.New())
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			k := Kafka{Topic: "ads", Timestamp: time.UnixMilli(1_790_000_000_000)}
			for i := range 3000 { // fill dictionaries and page buffers
				_ = w.Write(ctx, msgs[i%8], k)
			}
			i := 0
			allocs := testing.AllocsPerRun(2000, func() {
				if err := w.Write(ctx, msgs[i%8], k); err != nil {
					t.Fatal(err)
				}
				i++
			})
			if allocs > 0.05 {
				t.Errorf("%.2f allocations per Write", allocs)
			}
		})
	}
}

// TestPageScratchKept: the encoder's page scratch keeps the capacity page
// flushes grew it to, so flushing a page does not allocate a page-sized
// buffer every time.
func TestPageScratchKept(t *testing.T) {
	msgs, _ := benchCorpus()
	w, err := NewTable(Config{}, adTable(t, schema.Options{}), mem.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := Kafka{Topic: "ads", Timestamp: time.UnixMilli(1_790_000_000_000)}
	for i := range 30_000 { // every column flushes a page (PageRows is 20,000)
		if err := w.Write(ctx, msgs[i], k); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := cap(w.enc.page), w.cfg.PageBytes; got < want {
		t.Errorf("page scratch capacity %d after page flushes, want at least the page size %d", got, want)
	}
}

// TestChunksKeptAcrossFiles: a recycled file keeps the buffers ordinary
// data grew, column chunks over the large-record bound (1 MiB) included, so
// the next file does not regrow them. Since 3558b64 reset dropped every
// buffer over 1 MiB, and each file of 2 MiB of values reallocated its chunk
// (about 2 KiB allocated per message here).
func TestChunksKeptAcrossFiles(t *testing.T) {
	const rows, files = 2048, 6
	// No dictionary: a first dictionary page of distinct values is cut by
	// its indexes' size, so here it would hold the whole file.
	w, err := NewTable(Config{MaxRows: rows, NoDictionary: true}, deriveTable(t, "edge/edge.binpb", "edge.Scalars", schema.Options{}), discardStore{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := Kafka{Topic: "t", Timestamp: time.UnixMilli(0)}
	// Distinct 1 KiB values that do not compress: each file's f_bytes
	// chunk is about 2 MiB, in pages of 64 KiB.
	rng := rand.New(rand.NewPCG(1, 2))
	val, msg := make([]byte, 1<<10), []byte(nil)
	write := func(n int) {
		for range n {
			for j := 0; j < len(val); j += 8 {
				binary.LittleEndian.PutUint64(val[j:], rng.Uint64())
			}
			msg = tagB(msg[:0], 15, val)
			if err := w.Write(ctx, msg, k); err != nil {
				t.Fatal(err)
			}
			k.Offset++
		}
		w.TakeFinished()
	}
	write(2 * rows) // two files: the spare has grown
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	write(files * rows)
	runtime.ReadMemStats(&after)
	perMsg := float64(after.TotalAlloc-before.TotalAlloc) / (files * rows)
	t.Logf("%.0f B allocated per message over %d files", perMsg, files)
	if perMsg > 400 {
		t.Errorf("%.0f B allocated per message over %d recycled files of ordinary data, want at most 400: buffers are not kept across files", perMsg, files)
	}
}
