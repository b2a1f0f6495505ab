package writer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/mem"
)

// writeAndCompare writes every wire message as one row of md's table into
// one file, reads the file back with DuckDB (SELECT *) and compares each row
// with what protobuf-go decodes.
func writeAndCompare(t *testing.T, set, msg string, opts schema.Options, wires [][]byte) {
	t.Helper()
	md := loadMessage(t, set, msg)
	tab, err := schema.Derive(md, opts)
	if err != nil {
		t.Fatal(err)
	}
	st := mem.New()
	w, err := NewTable(Config{}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var want []*dynamicpb.Message
	for i, wire := range wires {
		dm := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(wire, dm); err != nil {
			t.Fatalf("message %d: protobuf-go rejects it: %v", i, err)
		}
		want = append(want, dm)
		if err := w.Write(ctx, wire, Kafka{Topic: "t", Offset: int64(i), Timestamp: time.UnixMilli(0)}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	rows := readRows(t, export(t, st, files))
	if len(rows) != len(wires) {
		t.Fatalf("DuckDB read %d rows, want %d", len(rows), len(wires))
	}
	c := &cmpCtx{t: t}
	for i, row := range rows {
		c.checkMessage(tab.Plan.Root, want[i], row, "")
		if len(c.errs) > 0 {
			t.Fatalf("row %d: %v", i, c.errs)
		}
	}
}

// TestEmptyPackedChunk: a repeated scalar sent as a packed chunk of length 0
// is zero elements to protobuf; the row must still get its (empty list)
// level, or every reader fails on the whole file.
func TestEmptyPackedChunk(t *testing.T) {
	good := tagB(tagV(nil, 1, 3), 14, []byte("ok"))
	cases := map[string][]byte{
		"only an empty chunk":             tagB(nil, 6, nil),
		"scalar then empty fixed64 chunk": tagB(tagV(nil, 6, 0x30), 8, nil),
		"empty chunk then elements":       tagV(tagB(nil, 1, nil), 1, 5),
		"elements then empty chunk":       tagB(tagB(nil, 1, packedV(1, 2)), 1, nil),
		"two empty chunks":                tagB(tagB(nil, 12, nil), 12, nil),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			var wires [][]byte
			for range 100 {
				wires = append(wires, good)
			}
			wires = append(wires, bad)
			for range 10 {
				wires = append(wires, good)
			}
			writeAndCompare(t, "edge/edge.binpb", "edge.RepeatedScalars", schema.Options{}, wires)
		})
	}
}

// TestTruncStringBounds is a property test at the cut point: for random
// strings of StringPrefix-1..StringPrefix+3 characters drawn from the
// characters around the edges (U+10FFFF, U+10FFFE, the surrogate gap,
// ASCII), the cut min is ≤ s and the cut max ≥ s in byte order, each at
// most StringPrefix+1 characters.
func TestTruncStringBounds(t *testing.T) {
	alphabet := []rune{'a', 'z', 0x7f, 0x80, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFE, utf8.MaxRune}
	r := rand.New(rand.NewPCG(10, 3))
	check := func(s string) {
		mn, ok := truncString(s, false)
		if !ok || mn > s || utf8.RuneCountInString(mn) > StringPrefix {
			t.Fatalf("min of %+q = %+q (ok %v)", s, mn, ok)
		}
		mx, ok := truncString(s, true)
		if !ok {
			if !strings.HasPrefix(s, strings.Repeat(string(utf8.MaxRune), StringPrefix+1)) {
				t.Fatalf("no max for %+q", s)
			}
			return
		}
		if mx < s || !utf8.ValidString(mx) || utf8.RuneCountInString(mx) > StringPrefix+1 {
			t.Fatalf("max of %+q = %+q: not an upper bound", s, mx)
		}
	}
	check(strings.Repeat(string(utf8.MaxRune), StringPrefix+2))
	check(strings.Repeat("a", StringPrefix) + string(utf8.MaxRune) + "b")
	check(strings.Repeat("a", StringPrefix-1) + string(rune(0xD7FF)) + strings.Repeat(string(utf8.MaxRune), 2))
	for range 200000 {
		n := StringPrefix - 1 + r.IntN(5)
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = alphabet[r.IntN(len(alphabet))]
		}
		check(string(rs))
	}
}

// TestStringStatsBoundDuckDB writes strings whose character at the cut is
// U+10FFFF and checks that every value DuckDB reads is within the file's
// Delta min/max (a reader skipping files by them would otherwise miss rows).
func TestStringStatsBoundDuckDB(t *testing.T) {
	md := loadMessage(t, "edge/edge.binpb", "edge.Scalars")
	tab, err := schema.Derive(md, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Repeat("p", StringPrefix-1)
	vals := []string{
		p + "\U0010FFFF" + "\U0010FFFF" + "x",
		p + "\U0010FFFF" + "\U0010FFFF",
		p + "a",
		strings.Repeat("\U0010FFFF", StringPrefix+3),
	}
	for _, vs := range [][]string{vals[:3], vals} {
		st := mem.New()
		w, err := NewTable(Config{}, tab, st)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i, v := range vs {
			if err := w.Write(ctx, tagB(nil, 14, []byte(v)), Kafka{Topic: "t", Offset: int64(i), Timestamp: time.UnixMilli(0)}); err != nil {
				t.Fatal(err)
			}
		}
		files, rows := flushRows(t, w, st)
		if len(rows) != len(vs) {
			t.Fatalf("DuckDB read %d rows, want %d", len(rows), len(vs))
		}
		mn, hasMin := files[0].Stats.MinValues["f_string"].(string)
		mx, hasMax := files[0].Stats.MaxValues["f_string"].(string)
		if len(vs) == 3 && (!hasMin || !hasMax) {
			t.Fatalf("no string bounds: %v %v", files[0].Stats.MinValues, files[0].Stats.MaxValues)
		}
		for _, row := range rows {
			v := row["f_string"].(string)
			if hasMin && v < mn || hasMax && v > mx {
				t.Errorf("value %+q outside the file's bounds [%+q, %+q]", v, mn, mx)
			}
		}
	}
}

// TestSparkCalendarFooter: every data file says in its footer that it was
// written with the proleptic Gregorian calendar (a Spark 3 version, no
// legacyDateTime key), so Spark's default configuration reads timestamps
// before 1900. The interop tier proves it with Spark itself
// (interop/tests/test_product_timestamps.py).
func TestSparkCalendarFooter(t *testing.T) {
	w, st := newTableWriter(t, "edge/edge.binpb", "edge.WellKnown", Config{})
	ctx := context.Background()
	// 0001-01-01T00:00:00Z, Go's zero time.
	zero := int64(minTimestampSeconds)
	if err := w.Write(ctx, tagB(nil, 1, tagV(nil, 1, uint64(zero))), Kafka{Topic: "t", Timestamp: time.UnixMilli(0)}); err != nil {
		t.Fatal(err)
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := readStored(t, st, files[0].Path)
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := pf.Lookup("org.apache.spark.version"); !ok || v < "3.0.0" {
		t.Errorf("org.apache.spark.version = %q (%v), want a Spark 3 version", v, ok)
	}
	for _, k := range []string{"org.apache.spark.legacyDateTime", "org.apache.spark.legacyINT96"} {
		if _, ok := pf.Lookup(k); ok {
			t.Errorf("footer has %s: Spark would rebase the values", k)
		}
	}
	rows := readRows(t, export(t, st, files))
	if got := rows[0]["ts"].(time.Time); !got.Equal(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("DuckDB reads ts = %v", got)
	}
}

// TestMaxRecordBytes: a valid 20 MB record of 10 million packed elements
// (and one of 5 million unpacked ones) is rejected with ErrRecordTooLarge
// before its buffers grow past the bound, leaving nothing behind; the
// records around it are written.
func TestMaxRecordBytes(t *testing.T) {
	const limit = 16 << 20
	packed := tagB(nil, 1, bytes.Repeat([]byte{0x81, 0x01}, 10_000_000)) // 10 M × 129
	var unpacked []byte
	for range 5_000_000 {
		unpacked = append(unpacked, 0x88, 0x01, 0x01) // field 17 (unpacked int32) = 1
	}
	md := loadMessage(t, "edge/edge.binpb", "edge.RepeatedScalars")
	tab, err := schema.Derive(md, schema.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := mem.New()
	w, err := NewTable(Config{MaxRecordBytes: limit}, tab, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good := tagB(nil, 1, packedV(1, 2, 3))
	off := int64(0)
	write := func(b []byte) error {
		off++
		return w.Write(ctx, b, Kafka{Topic: "t", Offset: off, Timestamp: time.UnixMilli(0)})
	}
	if err := write(good); err != nil {
		t.Fatal(err)
	}
	for name, big := range map[string][]byte{"packed": packed, "unpacked": unpacked} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err := write(big)
		runtime.ReadMemStats(&after)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrRecordTooLarge) {
			t.Fatalf("%s: err = %v, want ErrRecordTooLarge", name, err)
		}
		// Large slices grow by ~1.25×, so the allocations summed over the
		// growth are ~5× the final size: bounded by the limit, not by the
		// record (10 M elements unbounded take ~640 MB).
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 6*limit {
			t.Errorf("%s: decoding allocated %d MiB for a %d MiB bound", name, grew>>20, limit>>20)
		}
		t.Logf("%s (%d MB): rejected after allocating %.1f MiB: %v", name, len(big)/1_000_000, float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), err)
	}
	if w.BufferedRows() != 1 {
		t.Fatalf("%d rows buffered, want 1", w.BufferedRows())
	}
	if err := write(good); err != nil {
		t.Fatal(err)
	}
	if _, rows := flushRows(t, w, st); len(rows) != 2 {
		t.Fatalf("DuckDB read %d rows, want 2", len(rows))
	}
}

// TestLargeValueCopies: a 10 MB bytes value (a dead-lettered record, say)
// is held once while buffered and written (plus its compressed page), not
// copied into a dictionary, a PLAIN page, twice more for its page
// statistics and again into the column chunk; and once its file
// is written, the writer keeps no buffer of its size (buffered bytes count
// lengths, so a kept capacity would be memory the limit does not see). A
// value that does not compress is written from its buffer: no second copy,
// compressed or stored. The file's reader tells its length, so that the
// uploader's copy is one allocation (lenStore). The value reads back whole
// with DuckDB.
func TestLargeValueCopies(t *testing.T) {
	const size = 10 << 20
	random := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	t.Run("compressible", func(t *testing.T) {
		largeValueCopies(t, Config{}, bytes.Repeat([]byte("0123456789abcdef"), size/16), 2)
	})
	// A value that does not compress is not compressed into a second
	// buffer of its size either (nor stored into one): windows at its
	// start, middle and end decide, and its page is written from its
	// buffer.
	t.Run("incompressible", func(t *testing.T) { largeValueCopies(t, Config{}, random, 1) })
	t.Run("uncompressed", func(t *testing.T) { largeValueCopies(t, Config{Compression: CompressionNone}, random, 1) })
	// A value whose start compresses but whose rest does not is not
	// compressed into a buffer grown in steps (65 MiB allocated when only
	// its first 64 KiB decided); nor is one whose end alone compresses.
	zerosThenRandom := append(make([]byte, 1<<20), random[:size-1<<20]...)
	t.Run("zeros then random", func(t *testing.T) { largeValueCopies(t, Config{}, zerosThenRandom, 1) })
	randomThenZeros := append(bytes.Clone(random[:size-1<<20]), make([]byte, 1<<20)...)
	t.Run("random then zeros", func(t *testing.T) { largeValueCopies(t, Config{}, randomThenZeros, 1) })
	// A value that compresses to about half is compressed into a buffer
	// sized once from the windows, not grown in steps to its size.
	nibbles := bytes.Clone(random)
	for i := range nibbles {
		nibbles[i] &= 0x0f
	}
	t.Run("half compressible", func(t *testing.T) { largeValueCopies(t, Config{}, nibbles, 2) })
}

// largeValueCopies writes val in a file of its own and checks that doing
// so allocated at most copies times its size plus 4 MiB.
func largeValueCopies(t *testing.T, cfg Config, val []byte, copies int) {
	size := len(val)
	// On local disk: the memory store's copy of the file would count.
	dir := t.TempDir()
	ls, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewTable(cfg, deriveTable(t, "edge/edge.binpb", "edge.Scalars", schema.Options{}), lenStore{t, ls})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	small := tagB(nil, 14, []byte("small"))
	// A first file warms the writer up (its compressor's history is its
	// own fixed cost).
	for off := range int64(2) {
		if err := w.Write(ctx, small, Kafka{Topic: "t", Offset: off, Timestamp: time.UnixMilli(0)}); err != nil {
			t.Fatal(err)
		}
		if off == 0 {
			if _, err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	msg := tagB(nil, 15, val)
	var before, after, kept runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := w.Write(ctx, msg, Kafka{Topic: "t", Offset: 2, Timestamp: time.UnixMilli(0)}); err != nil {
		t.Fatal(err)
	}
	files, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("buffering and writing a %d MiB value allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	if alloc > uint64(copies*size+4<<20) {
		t.Errorf("buffering and writing a %d MiB value allocated %.1f MiB, want at most %d× the value and 4 MiB (the compressor's history, scratch)", size>>20, float64(alloc)/(1<<20), copies)
	}
	runtime.GC()
	runtime.ReadMemStats(&kept)
	runtime.KeepAlive(msg) // in before and in kept alike
	runtime.KeepAlive(w)
	if grew := int64(kept.HeapAlloc) - int64(before.HeapAlloc); grew > int64(size/4) {
		t.Errorf("after the file was written the heap is %.1f MiB larger than before the value: a buffer of its size was kept", float64(grew)/(1<<20))
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(dir, filepath.FromSlash(f.Path)))
	}
	rows := readRows(t, paths)
	if len(rows) != 2 {
		t.Fatalf("DuckDB read %d rows, want 2", len(rows))
	}
	var got []byte
	for _, r := range rows {
		if b, ok := r["f_bytes"].([]byte); ok && len(b) > 0 {
			got = b
		}
	}
	if !bytes.Equal(got, val) {
		t.Fatalf("f_bytes read back has %d bytes, want the %d written", len(got), len(val))
	}
}

// lenStore checks that every file the writer puts tells its length (Len,
// as bytes.Reader's), so that a store keeping a copy of it (ingest's
// uploader) allocates it at once.
type lenStore struct {
	t *testing.T
	*local.Store
}

func (s lenStore) Put(ctx context.Context, key string, r io.Reader) error {
	l, ok := r.(interface{ Len() int })
	if !ok {
		s.t.Errorf("Put %s: the reader has no Len", key)
		return s.Store.Put(ctx, key, r)
	}
	n := l.Len()
	cr := &countingReader{r: r}
	err := s.Store.Put(ctx, key, cr)
	if err == nil && cr.n != n {
		s.t.Errorf("Put %s: Len said %d bytes, read %d", key, n, cr.n)
	}
	return err
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestSkippedMessagePayload: a field without columns (an empty message)
// writes nothing, but protobuf-go parses its payload and rejects the record
// when it is malformed, so the writer must reject the same records (a
// *DecodeError: dead-lettered) and accept the rest. FuzzDifferential found
// it (a truncated tag inside google.protobuf.Empty).
func TestSkippedMessagePayload(t *testing.T) {
	md := loadMessage(t, "edge/edge.binpb", "edge.WithEmpty")
	cases := map[string][]byte{
		"empty Empty":                     tagB(nil, 3, nil),
		"Empty with an unknown field":     tagB(nil, 3, []byte{0x08, 0x01}),
		"Empty with a truncated tag":      tagB(nil, 3, []byte{0xf9}),
		"Empty with a truncated varint":   tagB(nil, 3, []byte{0x08, 0x80}),
		"Empty with an end group":         tagB(nil, 3, []byte{0x0c}),
		"Nothing inside OnlyNothing, bad": tagB(nil, 5, tagB(nil, 1, []byte{0xf9})),
		"Nothing inside OnlyNothing, ok":  tagB(nil, 5, tagB(nil, 1, []byte{0x10, 0x05})),
		"repeated Nothing, bad":           append(tagB(nil, 4, nil), tagB(nil, 4, []byte{0x0a, 0x05})...),
	}
	for name, rec := range cases {
		rec = append(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7), rec...)
		w, _ := newTableWriter(t, "edge/edge.binpb", "edge.WithEmpty", Config{})
		errPB := proto.Unmarshal(rec, dynamicpb.NewMessage(md))
		errW := w.Write(context.Background(), rec, Kafka{Topic: "t", Timestamp: time.UnixMilli(0)})
		var de *DecodeError
		switch {
		case errPB != nil && !errors.As(errW, &de):
			t.Errorf("%s: protobuf-go rejects it (%v), the writer returned %v", name, errPB, errW)
		case errPB == nil && errW != nil:
			t.Errorf("%s: protobuf-go accepts it, the writer rejects it: %v", name, errW)
		}
	}
}
