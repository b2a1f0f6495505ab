package writer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// TestNumericDictionary: INT32, INT64, FLOAT and DOUBLE columns with few
// distinct values are dictionary-encoded, as Spark writes them; a column
// null on its first pages decides on its first page with values; one
// whose dictionary outgrows maxDictBytes goes on PLAIN or
// DELTA_BINARY_PACKED in the same chunk; one of distinct values never
// gets a dictionary. Every value (-0, NaN and infinities included) reads
// back exactly with DuckDB and parquet-go.
func TestNumericDictionary(t *testing.T) {
	// o_int64 turns distinct after its first page, enough to pass 1 MiB of
	// dictionary (8-byte entries) with a page to spare.
	const lowRows = 20_000
	n := lowRows + maxDictBytes/8 + 20_000
	md := loadMessage(t, "edge/edge.binpb", "edge.OptionalScalars")
	tab, err := schema.Derive(md, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	field := func(name string) protoreflect.FieldDescriptor { return md.Fields().ByName(protoreflect.Name(name)) }
	fI32, fI64, fF32, fF64 := field("o_int32"), field("o_int64"), field("o_float"), field("o_double")
	doubles := []float64{0, math.Copysign(0, -1), math.NaN(), 1.5, math.Inf(1), math.Inf(-1), -2.25}
	type want struct {
		i32     *int32
		i64     int64
		f32     float32
		f64     *float64
		f64Bits uint64
	}
	wants := make([]want, n)
	r := rand.New(rand.NewPCG(7, 8))
	msgs := make([][]byte, n)
	for i := range msgs {
		m := dynamicpb.NewMessage(md)
		w := &wants[i]
		if i%5 != 0 {
			v := int32(i%7 - 3)
			w.i32 = &v
			m.Set(fI32, protoreflect.ValueOfInt32(v))
		}
		w.i64 = int64(i%10) * 1e12
		if i >= lowRows {
			w.i64 = int64(i)
		}
		m.Set(fI64, protoreflect.ValueOfInt64(w.i64))
		w.f32 = r.Float32()
		m.Set(fF32, protoreflect.ValueOfFloat32(w.f32))
		if i >= 30_000 { // null on the first pages
			v := doubles[i%len(doubles)]
			w.f64, w.f64Bits = &v, math.Float64bits(v)
			m.Set(fF64, protoreflect.ValueOfFloat64(v))
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = b
	}
	st := mem.New()
	w, err := NewTable(Config{}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	files := writeAll(t, w, msgs)
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	b := readStored(t, st, files[0].Path)
	pages := func(col string) map[format.Encoding]int32 {
		m := chunkMeta(t, b, col)
		p := map[format.Encoding]int32{}
		for _, s := range m.EncodingStats {
			if s.PageType == format.DataPage {
				p[s.Encoding] += s.Count
			}
		}
		return p
	}
	for _, col := range []string{"o_int32", "o_double"} {
		if p := pages(col); p[format.RLEDictionary] == 0 || p[format.Plain]+p[format.DeltaBinaryPacked] != 0 {
			t.Errorf("%s: data pages per encoding %v, want dictionary pages only", col, p)
		}
	}
	// Its values after the dictionary are consecutive: the page after the
	// one that stops the dictionary is a probe, which finds
	// DELTA_BINARY_PACKED smaller.
	if p := pages("o_int64"); p[format.RLEDictionary] == 0 || p[format.DeltaBinaryPacked] == 0 || p[format.Plain] != 0 {
		t.Errorf("o_int64: data pages per encoding %v, want dictionary pages, then DELTA_BINARY_PACKED", p)
	}
	if p := pages("o_float"); p[format.RLEDictionary] != 0 {
		t.Errorf("o_float (distinct values): data pages per encoding %v, want no dictionary", p)
	}

	check := func(reader string, i int, i32 *int32, i64 int64, f32 float32, f64 *float64) {
		t.Helper()
		w := wants[i]
		ok := (i32 == nil) == (w.i32 == nil) && (i32 == nil || *i32 == *w.i32) && i64 == w.i64 && f32 == w.f32 &&
			(f64 == nil) == (w.f64 == nil) && (f64 == nil || math.Float64bits(*f64) == w.f64Bits ||
			math.IsNaN(*f64) && math.IsNaN(*w.f64))
		if !ok {
			t.Fatalf("%s row %d: %v %d %v %v, want %v %d %v %v", reader, i, i32, i64, f32, f64, w.i32, w.i64, w.f32, w.f64)
		}
	}
	rows := readRows(t, export(t, st, files))
	if len(rows) != n {
		t.Fatalf("DuckDB read %d rows, want %d", len(rows), n)
	}
	for i, row := range rows {
		var i32 *int32
		if v, ok := row["o_int32"].(int32); ok {
			i32 = &v
		}
		var f64 *float64
		if v, ok := row["o_double"].(float64); ok {
			f64 = &v
		}
		i64, _ := row["o_int64"].(int64)
		f32, _ := row["o_float"].(float32)
		check("DuckDB", i, i32, i64, f32, f64)
	}

	parquetGoRows(t, b, n, [][]string{{"o_int32"}, {"o_int64"}, {"o_float"}, {"o_double"}}, func(i int, v []parquet.Value) {
		var i32 *int32
		var f64 *float64
		if !v[0].IsNull() {
			x := v[0].Int32()
			i32 = &x
		}
		if !v[3].IsNull() {
			x := v[3].Double()
			f64 = &x
		}
		check("parquet-go", i, i32, v[1].Int64(), v[2].Float(), f64)
	})
}

// TestNumericDictionaryAfterNulls: a numeric column null on its first
// page, then of distinct clustered values, gives its dictionary up on its
// first page with values; that page is a probe (the column's probe count
// is past it), so it and the next are DELTA_BINARY_PACKED, not PLAIN
// until the next probe. The file, with its empty dictionary page, reads
// back with DuckDB and parquet-go.
func TestNumericDictionaryAfterNulls(t *testing.T) {
	const nulls, n = 20_000, 40_000
	md := loadMessage(t, "edge/edge.binpb", "edge.OptionalScalars")
	tab, err := schema.Derive(md, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fI64 := md.Fields().ByName("o_int64")
	msgs := make([][]byte, n)
	for i := range msgs {
		m := dynamicpb.NewMessage(md)
		if i >= nulls {
			m.Set(fI64, protoreflect.ValueOfInt64(int64(i)*7919))
		}
		if msgs[i], err = proto.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	st := mem.New()
	w, err := NewTable(Config{}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	files := writeAll(t, w, msgs)
	b := readStored(t, st, files[0].Path)
	p := map[format.Encoding]int32{}
	for _, s := range chunkMeta(t, b, "o_int64").EncodingStats {
		if s.PageType == format.DataPage {
			p[s.Encoding] += s.Count
		}
	}
	if p[format.DeltaBinaryPacked] == 0 || p[format.Plain] != 0 {
		t.Errorf("o_int64: data pages per encoding %v, want DELTA_BINARY_PACKED after the nulls, no PLAIN", p)
	}
	rows := readRows(t, export(t, st, files))
	if len(rows) != n {
		t.Fatalf("DuckDB read %d rows, want %d", len(rows), n)
	}
	for i, row := range rows {
		v, ok := row["o_int64"].(int64)
		if ok != (i >= nulls) || ok && v != int64(i)*7919 {
			t.Fatalf("DuckDB row %d: o_int64 %v", i, row["o_int64"])
		}
	}
	parquetGoRows(t, b, n, [][]string{{"o_int64"}}, func(i int, v []parquet.Value) {
		if v[0].IsNull() != (i < nulls) || !v[0].IsNull() && v[0].Int64() != int64(i)*7919 {
			t.Fatalf("parquet-go row %d: o_int64 %v", i, v[0])
		}
	})
}

// TestByteBounds: the min and max by 8-byte prefix keys are those of
// bytes.Compare, for values shorter and longer than the key, with zero
// bytes (which the short values' padding looks like) and shared prefixes.
func TestByteBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	alphabet := []byte{0, 1, 'a', 0xff}
	for round := range 2000 {
		vals := make([][]byte, 1+r.IntN(20))
		for i := range vals {
			v := make([]byte, r.IntN(13))
			for j := range v {
				v[j] = alphabet[r.IntN(len(alphabet))]
			}
			vals[i] = v
		}
		b := newByteBounds(vals[0])
		for _, v := range vals[1:] {
			b.add(v)
		}
		lo, hi := slices.MinFunc(vals, bytes.Compare), slices.MaxFunc(vals, bytes.Compare)
		if !bytes.Equal(b.lo, lo) || !bytes.Equal(b.hi, hi) {
			t.Fatalf("round %d: bounds %x %x of %x, want %x %x", round, b.lo, b.hi, vals, lo, hi)
		}
	}
}

// TestNoDeltaLengthByteArray: byte-array columns whose values have one
// length (ids, hashes), where DELTA_LENGTH_BYTE_ARRAY would compress
// smallest, stay PLAIN, which every Spark 3.5 release reads (before 3.5.7
// Spark's vectorized reader fails on DELTA_LENGTH_BYTE_ARRAY pages that do
// not start a batch: SPARK-52240), including pages with empty values and
// nulls; every value reads back exactly with DuckDB and parquet-go.
func TestNoDeltaLengthByteArray(t *testing.T) {
	const n = 20_000
	ids, traces, consents := make([]string, n), make([][]byte, n), make([]*string, n)
	b, rows := writeImpressions(t, Config{}, n, func(i int, m *adtrackpb.AdImpression) {
		if i%3 == 0 {
			m.TraceContext = nil // empty
		}
		if i%5 == 0 {
			m.ConsentString = nil // null
		}
		ids[i], traces[i], consents[i] = m.ImpressionId, m.TraceContext, m.ConsentString
	})
	for _, p := range [][]string{{"impression_id"}, {"trace_context"}, {"consent_string"}, {"placement", "page_url"}} {
		md := chunkMeta(t, b, p...)
		pages := map[format.Encoding]int32{}
		for _, s := range md.EncodingStats {
			pages[s.Encoding] += s.Count
		}
		if pages[format.DeltaLengthByteArray] != 0 || slices.Contains(md.Encoding, format.DeltaLengthByteArray) {
			t.Errorf("%v: data pages per encoding %v (encodings %v), want no DELTA_LENGTH_BYTE_ARRAY", p, pages, md.Encoding)
		}
	}
	for i, row := range rows {
		tc, _ := row["trace_context"].([]byte)
		cs, _ := row["consent_string"].(string)
		if row["impression_id"] != ids[i] || !bytes.Equal(tc, traces[i]) || (row["consent_string"] == nil) != (consents[i] == nil) || consents[i] != nil && cs != *consents[i] {
			t.Fatalf("DuckDB row %d: %v %x %v, want %s %x %v", i, row["impression_id"], tc, row["consent_string"], ids[i], traces[i], consents[i])
		}
	}
	parquetGoRows(t, b, n, [][]string{{"impression_id"}, {"trace_context"}}, func(i int, v []parquet.Value) {
		if id, tc := string(v[0].ByteArray()), v[1].ByteArray(); id != ids[i] || !bytes.Equal(tc, traces[i]) {
			t.Fatalf("parquet-go row %d: %s %x, want %s %x", i, id, tc, ids[i], traces[i])
		}
	})
}

// TestDropDictionaryAllocatesOnce: a first page whose dictionary is dropped
// is copied into a PLAIN buffer sized once, not grown by append (every
// partition file with fresh buffers paid about twice its first pages), and
// holds the values in order.
func TestDropDictionaryAllocatesOnce(t *testing.T) {
	c := newColumn(&colSpec{kind: parquet.ByteArray, dict: true})
	var want []byte
	for i := range 5000 {
		v := fmt.Appendf(nil, "value-%06d", i%4000)
		c.byteArray(0, 0, v)
		want = binary.LittleEndian.AppendUint32(want, uint32(len(v)))
		want = append(want, v...)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c.dropDictionary(0)
	runtime.ReadMemStats(&after)
	if n := after.Mallocs - before.Mallocs; n > 2 {
		t.Errorf("dropDictionary of 5000 values (%d bytes PLAIN): %d allocations, want at most 2", len(want), n)
	}
	if !bytes.Equal(c.vals, want) || c.dictMode {
		t.Errorf("after dropDictionary: %d PLAIN bytes (dictionary mode %v), want the %d of the values in order", len(c.vals), c.dictMode, len(want))
	}
}

// TestSpareKeepsLargerFile: the files one Flush finishes are all kept as
// spares while their buffers fit in MaxBytes, and the next file takes the
// largest (the busy partition's, not a partition's few late rows). When
// they do not fit, the larger replace the smaller, the largest is kept
// even alone over MaxBytes, and FlushLargest (memory is short) keeps only
// the largest, and that only if it fits in its target.
func TestSpareKeepsLargerFile(t *testing.T) {
	var rng *rand.Rand
	newW := func(maxBytes int64) *Writer {
		rng = rand.New(rand.NewPCG(1, 2)) // the same files each time
		w, err := NewTable(Config{NoDictionary: true, MaxBytes: maxBytes}, deriveTable(t, "edge/edge.binpb", "edge.Scalars", schema.Options{Partitions: []string{"f_int32"}}), discardStore{})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	ctx := context.Background()
	k := Kafka{Topic: "t", Timestamp: time.UnixMilli(0)}
	val := make([]byte, 1<<10) // random: the chunk does not compress
	write := func(w *Writer, part uint64, n int) {
		for range n {
			for j := 0; j < len(val); j += 8 {
				binary.LittleEndian.PutUint64(val[j:], rng.Uint64())
			}
			if err := w.Write(ctx, tagB(tagV(nil, 1, part), 15, val), k); err != nil {
				t.Fatal(err)
			}
			k.Offset++
		}
	}
	caps := func(w *Writer) []int {
		var c []int
		for _, s := range w.spares {
			c = append(c, s.cap)
		}
		slices.Sort(c)
		return c
	}
	w := newW(0)
	write(w, 1, 2048) // the busy partition: 2 MiB of values
	write(w, 2, 1)    // a late row of another one, opened (and finished) last
	write(w, 3, 512)
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all := caps(w)
	if len(all) != 3 || all[2] < 1<<20 || w.spareCap != all[0]+all[1]+all[2] {
		t.Fatalf("spares after Flush hold %v bytes of buffers (%d in all), want three, the largest the busy file's (at least 1 MiB)", all, w.spareCap)
	}
	write(w, 4, 1)
	if got := caps(w); !slices.Equal(got, all[:2]) {
		t.Errorf("after a file opened, the spares hold %v, want %v: the next file takes the largest", got, all[:2])
	}
	// MaxBytes holds the busy file's buffers and the 512-row file's, not
	// the late row's besides: that spare is dropped for the 512-row one.
	w = newW(int64(all[2] + all[1] + all[0]/2))
	write(w, 1, 2048)
	write(w, 2, 1)
	write(w, 3, 512)
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := caps(w); len(got) != 2 || got[0] < 2*all[0] || got[1] < 1<<20 {
		t.Errorf("spares within MaxBytes %d hold %v, want about %v", w.cfg.MaxBytes, got, all[1:])
	}
	// Below the busy file's buffers: it alone is kept.
	w = newW(int64(all[2] - 1))
	write(w, 1, 2048)
	write(w, 2, 1)
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := caps(w); len(got) != 1 || got[0] < 1<<20 {
		t.Errorf("spares within MaxBytes %d hold %v, want the busy file's alone", w.cfg.MaxBytes, got)
	}
	w = newW(0)
	write(w, 1, 2048)
	write(w, 2, 1)
	write(w, 3, 512)
	if err := w.FlushLargest(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := caps(w); len(got) != 0 || w.OpenFiles() != 0 || w.HeldBytes() != 0 {
		t.Errorf("after FlushLargest(0) the spares hold %v, %d files open, %d bytes held; want nothing", got, w.OpenFiles(), w.HeldBytes())
	}
	write(w, 1, 2048)
	write(w, 2, 1)
	write(w, 3, 512)
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	busy := caps(w)[2]
	if err := w.FlushLargest(ctx, int64(busy)); err != nil {
		t.Fatal(err)
	}
	if got := caps(w); !slices.Equal(got, []int{busy}) {
		t.Errorf("spares after FlushLargest(%d) hold %v, want the busy file's alone", busy, got)
	}

}

// TestHeldBytesCountsCapacity: what a Writer reports against a memory
// limit (HeldBytes) is at least the capacity its buffers and spares take,
// also for a file opened with a spare's buffers (BufferedBytes counts its
// few rows), and a flush for the limit (FlushLargest down to a target)
// brings it within the target, so the next check does not flush again: a
// limit checked after every record cuts files of hundreds of rows, not of
// one, with the capacity counted.
func TestHeldBytesCountsCapacity(t *testing.T) {
	w, err := NewTable(Config{NoDictionary: true}, deriveTable(t, "edge/edge.binpb", "edge.Scalars", schema.Options{Partitions: []string{"f_int32"}}), discardStore{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	k := Kafka{Topic: "t", Timestamp: time.UnixMilli(0)}
	val := make([]byte, 1<<10) // random: the chunk does not compress
	write := func(part uint64) {
		t.Helper()
		for j := 0; j < len(val); j += 8 {
			binary.LittleEndian.PutUint64(val[j:], rng.Uint64())
		}
		if err := w.Write(ctx, tagB(tagV(nil, 1, part), 15, val), k); err != nil {
			t.Fatal(err)
		}
		k.Offset++
	}
	// capacity is what the buffers take, summed independently of HeldBytes.
	capacity := func() int64 {
		var n int64
		for _, f := range w.order {
			n += int64(f.capBytes())
			for _, c := range f.cols {
				n += int64(c.sealedLen)
			}
		}
		for _, s := range w.spares {
			n += int64(s.cap)
		}
		return n
	}
	check := func(when string) {
		t.Helper()
		if h, c := w.HeldBytes(), capacity(); h < c || h < w.BufferedBytes() {
			t.Fatalf("%s: HeldBytes %d, below the capacity held %d or BufferedBytes %d", when, h, c, w.BufferedBytes())
		}
	}
	for range 2048 {
		write(1)
	}
	check("2 MiB written")
	if _, err := w.Flush(ctx); err != nil { // a commit: the file's buffers are a spare
		t.Fatal(err)
	}
	check("after Flush")
	write(1) // reopens with the spare: 1 KiB of rows in 2 MiB of buffers
	if w.HeldBytes() < 1<<20 {
		t.Errorf("a file opened with a 2 MiB spare holds %d bytes, want its capacity", w.HeldBytes())
	}
	check("one row in a spare's buffers")
	const limit = 512 << 10
	if err := w.FlushLargest(ctx, limit*3/4); err != nil {
		t.Fatal(err)
	}
	if h := w.HeldBytes(); h > limit*3/4 {
		t.Fatalf("after FlushLargest(%d): %d bytes held", limit*3/4, h)
	}
	check("after FlushLargest")
	w.TakeFinished()
	// A limit checked after every record, as a runner does.
	var files []File
	for i := range 8192 {
		write(uint64(1 + i%2))
		check("writing under the limit")
		if w.HeldBytes() > limit {
			if err := w.FlushLargest(ctx, limit*3/4); err != nil {
				t.Fatal(err)
			}
			if h := w.HeldBytes(); h > limit*3/4 {
				t.Fatalf("after FlushLargest(%d): %d bytes held", limit*3/4, h)
			}
			check("after FlushLargest")
			files = append(files, w.TakeFinished()...)
		}
	}
	for _, f := range files {
		if f.Rows < 64 {
			t.Fatalf("%d files cut for the limit, one of %d rows: want at least 64 each", len(files), f.Rows)
		}
	}
	if len(files) < 8 || len(files) > 8192/64 {
		t.Errorf("%d files cut for the limit from 8 MiB under %d bytes, want 8 to %d", len(files), limit, 8192/64)
	}
}

// TestDictTablesTrimmedOnReset: a dictionary hash table over keep bytes
// (a column of many distinct values) is dropped when its file's buffers
// are kept for the next file, for numbers and byte arrays; a small one is
// kept, emptied.
func TestDictTablesTrimmedOnReset(t *testing.T) {
	const keep = 1 << 20
	e := &encoder{}
	fill := func(c *column, from, n, mod int) {
		c.vals, c.nvals = c.vals[:0], n
		for i := range n {
			c.vals = binary.LittleEndian.AppendUint64(c.vals, uint64(from+i%mod))
		}
		if !c.indexValues(e) {
			t.Fatalf("values %d..: no dictionary", from)
		}
	}
	small, big := newColumn(&colSpec{kind: parquet.Int64, dict: true}), newColumn(&colSpec{kind: parquet.Int64, dict: true})
	fill(small, 0, 8000, 10)
	fill(big, 0, 8000, 10)
	fill(big, 100, 100_000, 100_000) // a later page: the dictionary grows
	bytesCol, bytesSmall := newColumn(&colSpec{kind: parquet.ByteArray, dict: true}), newColumn(&colSpec{kind: parquet.ByteArray, dict: true})
	for i := range 100_000 {
		bytesCol.byteArray(0, 0, fmt.Appendf(nil, "v%d", i))
		bytesSmall.byteArray(0, 0, fmt.Appendf(nil, "v%d", i%10))
	}
	for _, c := range []*column{small, big, bytesCol, bytesSmall} {
		c.reset(keep)
	}
	if big.ndict.slots != nil || bytesCol.dict.slots != nil {
		t.Errorf("after reset: %d and %d slots kept of the large tables, want none", len(big.ndict.slots), len(bytesCol.dict.slots))
	}
	if small.ndict.slots == nil || small.ndict.n != 0 || bytesSmall.dict.slots == nil || bytesSmall.dict.n != 0 {
		t.Errorf("after reset: small tables %d/%d and %d/%d slots/entries, want kept and empty", len(small.ndict.slots), small.ndict.n, len(bytesSmall.dict.slots), bytesSmall.dict.n)
	}
	// Both start again from nothing and index as before.
	fill(big, 0, 8000, 10)
	if len(big.dictOffs) != 10 || e.ints[9] != 9 {
		t.Errorf("after reset: %d entries, want 10", len(big.dictOffs))
	}
	if i := bytesCol.dictIndex([]byte("v7")); i != 0 || len(bytesCol.dictOffs) != 1 {
		t.Errorf("after reset: index %d of a new value, %d entries, want 0, 1", i, len(bytesCol.dictOffs))
	}
}
