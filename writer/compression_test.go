package writer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/protolake/protolake/internal/adtrack"
	"github.com/protolake/protolake/internal/adtrackpb"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/mem"
)

// writeImpressions writes n generated impressions, each changed by edit,
// as one file and returns the file's bytes and its DuckDB rows (SELECT *).
func writeImpressions(t *testing.T, cfg Config, n int, edit func(i int, m *adtrackpb.AdImpression)) ([]byte, []map[string]any) {
	t.Helper()
	msgs := genImpressions(t, n, edit)
	st := mem.New()
	w, err := NewTable(cfg, adTable(t, schema.Options{}), st)
	if err != nil {
		t.Fatal(err)
	}
	files := writeAll(t, w, msgs)
	if len(files) != 1 {
		t.Fatalf("%d files, want 1", len(files))
	}
	rows := readRows(t, export(t, st, files))
	if len(rows) != n {
		t.Fatalf("DuckDB read %d rows, want %d", len(rows), n)
	}
	return readStored(t, st, files[0].Path), rows
}

// genImpressions returns n generated impressions, each changed by edit,
// as wire bytes: the messages of writeImpressions.
func genImpressions(t *testing.T, n int, edit func(i int, m *adtrackpb.AdImpression)) [][]byte {
	t.Helper()
	r := rand.New(rand.NewPCG(16, 16))
	msgs := make([][]byte, n)
	for i := range msgs {
		m := adtrack.Impression(r, i, adtrack.CorpusBase, time.Second)
		edit(i, m)
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = b
	}
	return msgs
}

// chunkMeta returns the metadata of the column chunk at path.
func chunkMeta(t *testing.T, b []byte, path ...string) format.ColumnMetaData {
	t.Helper()
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pf.Metadata().RowGroups[0].Columns {
		if slices.Equal(c.MetaData.PathInSchema, path) {
			return c.MetaData
		}
	}
	t.Fatalf("no column %v", path)
	return format.ColumnMetaData{}
}

// TestCompressionDecidedPerPage: a column whose first pages are noise and
// whose later pages repeat one value is compressed where it pays. (The
// writer used to store the whole chunk uncompressed after its first page.)
func TestCompressionDecidedPerPage(t *testing.T) {
	// Enough rows for most pages to follow the probe after the noise:
	// trace_context's pages are plainBytesPage long.
	const n, noisy = 40_000, 1_500
	noise := rand.New(rand.NewPCG(1, 2))
	constant := bytes.Repeat([]byte("protolake"), 8)
	want := make([][]byte, n)
	// No dictionary: it would hold the noise and index the rest.
	b, rows := writeImpressions(t, Config{NoDictionary: true}, n, func(i int, m *adtrackpb.AdImpression) {
		m.TraceContext = constant
		if i < noisy {
			m.TraceContext = make([]byte, 72)
			for j := range m.TraceContext {
				m.TraceContext[j] = byte(noise.Uint32())
			}
		}
		want[i] = m.TraceContext
	})
	md := chunkMeta(t, b, "trace_context")
	if md.Codec != format.Zstd {
		t.Errorf("trace_context codec %v, want ZSTD", md.Codec)
	}
	// Noise and the pages until the next probe stay stored; the rest
	// compresses to almost nothing.
	if md.TotalCompressedSize > md.TotalUncompressedSize/2 {
		t.Errorf("trace_context: %d bytes compressed of %d: later pages were not compressed", md.TotalCompressedSize, md.TotalUncompressedSize)
	}
	for i, row := range rows {
		if got, _ := row["trace_context"].([]byte); !bytes.Equal(got, want[i]) {
			t.Fatalf("row %d trace_context: got %x, want %x", i, got, want[i])
		}
	}
}

// TestDeltaBinaryPacked: integer columns whose deltas are small are written
// DELTA_BINARY_PACKED, including deltas that wrap around the type's range
// (the spec's two's-complement arithmetic); pages of extremes that follow
// go back to PLAIN at the next probe, in the same chunk; all read back
// exactly by DuckDB and parquet-go.
func TestDeltaBinaryPacked(t *testing.T) {
	const n = 20_000
	wantFloor := make([]int64, n)
	wantPos := make([]int32, n)
	noise := rand.New(rand.NewPCG(3, 4))
	// Small pages: many probes, so the chunk mixes both encodings.
	b, rows := writeImpressions(t, Config{PageBytes: 4096}, n, func(i int, m *adtrackpb.AdImpression) {
		// Climbs through MaxInt64 into the negatives, then pages of
		// extremes alternating.
		m.BidFloorNanos = math.MaxInt64 - n/2 + int64(i)*1
		m.Placement.Position = math.MaxInt32 - n/2 + int32(i)
		if i >= n-6000 { // noise over the whole range, and the extremes
			m.BidFloorNanos = int64(noise.Uint64())
			m.Placement.Position = int32(noise.Uint32())
			if i%7 == 0 {
				m.BidFloorNanos = []int64{math.MinInt64, math.MaxInt64, 0, -1}[i%4]
				m.Placement.Position = []int32{math.MinInt32, math.MaxInt32, 0, -1}[i%4]
			}
		}
		wantFloor[i], wantPos[i] = m.BidFloorNanos, m.Placement.Position
	})
	for _, p := range [][]string{{"bid_floor_nanos"}, {"placement", "position"}, {"_kafka", "offset"}} {
		if md := chunkMeta(t, b, p...); !slices.Contains(md.Encoding, format.DeltaBinaryPacked) {
			t.Errorf("%v: encodings %v, want DELTA_BINARY_PACKED among them", p, md.Encoding)
		}
	}
	for _, p := range [][]string{{"bid_floor_nanos"}, {"placement", "position"}} {
		md := chunkMeta(t, b, p...)
		pages := map[format.Encoding]int32{}
		for _, s := range md.EncodingStats {
			pages[s.Encoding] += s.Count
		}
		if pages[format.Plain] == 0 || pages[format.DeltaBinaryPacked] == 0 || !slices.Contains(md.Encoding, format.Plain) {
			t.Errorf("%v: data pages per encoding %v (encodings %v), want PLAIN and DELTA_BINARY_PACKED pages", p, pages, md.Encoding)
		}
	}
	for i, row := range rows {
		pl, _ := row["placement"].(map[string]any)
		if row["bid_floor_nanos"] != wantFloor[i] || pl["position"] != wantPos[i] {
			t.Fatalf("DuckDB row %d: bid_floor_nanos %v position %v, want %d %d", i, row["bid_floor_nanos"], pl["position"], wantFloor[i], wantPos[i])
		}
	}
	parquetGoRows(t, b, n, [][]string{{"bid_floor_nanos"}, {"placement", "position"}}, func(i int, v []parquet.Value) {
		if floor, pos := v[0].Int64(), v[1].Int32(); floor != wantFloor[i] || pos != wantPos[i] {
			t.Fatalf("parquet-go row %d: %d %d, want %d %d", i, floor, pos, wantFloor[i], wantPos[i])
		}
	})
}

// TestStoredZstdFrame: a page stored without compression is a zstd frame
// that decompresses to itself, also across the 128 KiB block limit.
func TestStoredZstdFrame(t *testing.T) {
	c, err := newCodec(CompressionZstd, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := &encoder{codec: c}
	var dec pqzstd.Codec
	for _, n := range []int{0, 1, 1000, 128 << 10, 128<<10 + 1, 300 << 10} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i * 7)
		}
		got, err := dec.Decode(nil, e.stored(nil, src))
		if err != nil || !bytes.Equal(got, src) {
			t.Errorf("%d bytes: err %v, equal %v", n, err, bytes.Equal(got, src))
		}
	}
}

// TestAppendRawIsStoredZstd: a large page written from its own buffer
// (appendRaw's segments) has the bytes of the stored zstd frame every
// reader already reads (appendStoredZstd), and rawSize is its length.
func TestAppendRawIsStoredZstd(t *testing.T) {
	for _, c := range []struct {
		comp Compression
		kind format.CompressionCodec
	}{{CompressionZstd, format.Zstd}, {CompressionNone, format.Uncompressed}} {
		cd, err := newCodec(c.comp, DefaultZstdLevel)
		if err != nil {
			t.Fatal(err)
		}
		e := &encoder{codec: cd}
		for _, n := range []int{1 << 20, 1<<20 + 1, 128<<10 - 1, 3 << 17} {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i * 7)
			}
			h := []byte("page header")
			var got []byte
			for _, s := range e.appendRaw(nil, h, p) {
				got = append(got, s...)
			}
			want := append(bytes.Clone(h), p...)
			if c.kind == format.Zstd {
				want = appendStoredZstd(bytes.Clone(h), p)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s, %d bytes: segments differ from the stored page", c.comp, n)
			}
			if len(got)-len(h) != e.rawSize(p) {
				t.Errorf("%s, %d bytes: rawSize %d, written %d", c.comp, n, e.rawSize(p), len(got)-len(h))
			}
		}
	}
}

// TestDictionaryGivenUpEarly: a string column whose first values are all
// distinct (random ids) gives its dictionary up after dictProbeValues of
// them (it holds no dictionary from the next check of its pages on) and is
// PLAIN, in a first page as long as the dictionary's would have been
// (13,120 rows: 4 bytes an index and a definition level in 64 KiB), in a
// buffer that doubles and is counted whole; a
// column of 5,000 values drawn at random, whose first values are mostly
// but not all distinct, keeps its dictionary. Both read back exactly.
// Fails with the early rule off (impression_id still dictionary-encoded at
// row 2,048), with a loose threshold (creative_id loses its dictionary) and
// with the first page cut at the give-up (237baff: the second page at row
// 2,048), and with the buffer grown in append's steps or its room
// uncounted.
func TestDictionaryGivenUpEarly(t *testing.T) {
	const n = 20_000
	ids := make([]string, n)
	msgs := genImpressions(t, n, func(i int, m *adtrackpb.AdImpression) { ids[i] = m.ImpressionId })
	w, err := NewTable(Config{}, adTable(t, schema.Options{}), discardStore{})
	if err != nil {
		t.Fatal(err)
	}
	// The 2,048th row is a multiple of pageCheckRows: its commit checks.
	for i, m := range msgs[:dictProbeValues] {
		if err := w.Write(context.Background(), m, Kafka{Topic: "ads", Offset: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var ids0 *column
	for _, c := range w.order[0].cols {
		switch strings.Join(c.spec.path, ".") {
		case "impression_id":
			ids0 = c
			if c.dictMode || len(c.dictOffs) > 0 || c.nvals != dictProbeValues {
				t.Errorf("impression_id after %d rows: dictionary mode %v, %d entries, %d values in the page; want PLAIN, none, all", dictProbeValues, c.dictMode, len(c.dictOffs), c.nvals)
			}
		case "creative_id":
			if !c.dictMode {
				t.Errorf("creative_id after %d rows: dictionary given up", dictProbeValues)
			}
		}
	}
	// The page's buffer doubles as it fills (74 KB at the give-up, then
	// 148, 296, 592: not append's smaller steps), holds at most the page
	// again, and the open file counts it whole.
	buf, grown := unsafe.SliceData(ids0.vals), 0
	for i := dictProbeValues; i < 13_104; i++ {
		if err := w.Write(context.Background(), msgs[i], Kafka{Topic: "ads", Offset: int64(i)}); err != nil {
			t.Fatal(err)
		}
		if b := unsafe.SliceData(ids0.vals); b != buf {
			buf = b
			grown++
		}
	}
	if n := len(ids0.vals); ids0.pageFirstRow != 0 || grown > 3 || cap(ids0.vals) > 2*n || ids0.bufferedBytes()-ids0.chunkLen() < cap(ids0.vals) {
		t.Errorf("impression_id at row 13,104: page from row %d, buffer grown %d times, %d bytes counted for a buffer of %d holding %d", ids0.pageFirstRow, grown, ids0.bufferedBytes()-ids0.chunkLen(), cap(ids0.vals), n)
	}

	b, rows := writeImpressions(t, Config{}, n, func(i int, m *adtrackpb.AdImpression) {})
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range pf.Metadata().RowGroups[0].Columns {
		switch strings.Join(c.MetaData.PathInSchema, ".") {
		case "impression_id":
			if slices.Contains(c.MetaData.Encoding, format.RLEDictionary) {
				t.Errorf("impression_id: encodings %v, want PLAIN only", c.MetaData.Encoding)
			}
			locs := pf.OffsetIndexes()[i].PageLocations
			if len(locs) < 2 || locs[1].FirstRowIndex != 13_120 {
				t.Errorf("impression_id: pages %+v, want the second to start at row 13,120", locs[:min(2, len(locs))])
			}
		case "creative_id":
			if !slices.Contains(c.MetaData.Encoding, format.RLEDictionary) {
				t.Errorf("creative_id: encodings %v, want RLE_DICTIONARY", c.MetaData.Encoding)
			}
		}
	}
	for i, row := range rows {
		if row["impression_id"] != ids[i] {
			t.Fatalf("row %d impression_id %v, want %s", i, row["impression_id"], ids[i])
		}
	}
}

// TestPlainByteArrayPages: PLAIN byte-array pages are cut at
// plainBytesPage(PageBytes), 124 KiB at the default, which leaves room in
// one 128 KiB zstd block for the rows a page overshoots by; at every kind
// of zstd level (1-2, 3-5, 6-9, 10-22) such a page is compressed in one
// block (with the encoder's window option after its level, level 1 cut
// blocks at 64 KiB), and the file reads back the same with DuckDB and
// parquet-go.
func TestPlainByteArrayPages(t *testing.T) {
	// A literal, not plainBytesPage: the page sizes below are checked
	// against what the rule is meant to give.
	const want = 124 << 10
	if got := plainBytesPage(DefaultPageBytes); got != want {
		t.Errorf("plainBytesPage(%d) = %d, want %d", DefaultPageBytes, got, want)
	}
	const n = 20_000
	var first []map[string]any
	for _, level := range []int{1, 3, 7, 22} {
		ids := make([]string, n)
		b, rows := writeImpressions(t, Config{ZstdLevel: level}, n, func(i int, m *adtrackpb.AdImpression) {
			ids[i] = m.ImpressionId
		})
		pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range pf.Metadata().RowGroups[0].Columns {
			if strings.Join(c.MetaData.PathInSchema, ".") != "impression_id" {
				continue
			}
			// The second page: the first is the dictionary's probe
			// (TestDictionaryGivenUpEarly).
			locs := pf.OffsetIndexes()[i].PageLocations
			if len(locs) < 3 {
				t.Fatalf("level %d: impression_id: %d pages", level, len(locs))
			}
			var h format.PageHeader
			var proto thrift.CompactProtocol
			if err := thrift.NewDecoder(proto.NewReader(bytes.NewReader(b[locs[1].Offset:]))).Decode(&h); err != nil {
				t.Fatal(err)
			}
			rows := int(locs[2].FirstRowIndex - locs[1].FirstRowIndex)
			// pageFull counts a byte of definition level a row, the
			// page holds them RLE-encoded.
			raw := int(h.UncompressedPageSize)
			if raw < want-rows || raw > want+pageCheckRows*raw/rows || raw > 128<<10 {
				t.Errorf("level %d: impression_id: second page of %d raw bytes (%d rows), want %d and up to %d rows more, at most 128 KiB", level, raw, rows, want-rows, pageCheckRows)
			}
			end := locs[1].Offset + int64(locs[1].CompressedPageSize)
			data := b[end-int64(h.CompressedPageSize) : end]
			if len(data) >= raw-raw/16 {
				t.Fatalf("level %d: impression_id: second page stored (%d of %d bytes), want it compressed", level, len(data), raw)
			}
			if k := zstdBlocks(t, data); k != 1 {
				t.Errorf("level %d: impression_id: second page (%d raw bytes) in %d zstd blocks, want 1", level, raw, k)
			}
		}
		for i, row := range rows {
			if row["impression_id"] != ids[i] {
				t.Fatalf("level %d: DuckDB row %d impression_id %v, want %s", level, i, row["impression_id"], ids[i])
			}
		}
		if first == nil {
			first = rows
		} else {
			for i, row := range rows {
				for k, v := range row {
					// proto.Marshal writes a map's entries in random order.
					if k != "labels" && !reflect.DeepEqual(v, first[i][k]) {
						t.Fatalf("level %d: DuckDB row %d %s = %v, at level 1 %v", level, i, k, v, first[i][k])
					}
				}
			}
		}
		parquetGoRows(t, b, n, [][]string{{"impression_id"}}, func(i int, v []parquet.Value) {
			if got := v[0].String(); got != ids[i] {
				t.Fatalf("level %d: parquet-go row %d impression_id %q, want %s", level, i, got, ids[i])
			}
		})
	}
}

// zstdBlocks returns how many blocks zstd frame f holds (RFC 8878 3.1.1),
// failing the test unless f is one whole frame.
func zstdBlocks(t *testing.T, f []byte) int {
	t.Helper()
	if len(f) < 5 || binary.LittleEndian.Uint32(f) != 0xfd2fb528 {
		t.Fatalf("not a zstd frame: % x", f[:min(len(f), 8)])
	}
	fhd := f[4]
	single := fhd&0x20 != 0
	pos := 5
	if !single {
		pos++ // window descriptor
	}
	pos += []int{0, 1, 2, 4}[fhd&3] // dictionary id
	fcs := []int{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && single {
		fcs = 1
	}
	pos += fcs
	n := 0
	for last := false; !last; n++ {
		if pos+3 > len(f) {
			t.Fatalf("zstd frame of %d bytes: block %d truncated", len(f), n)
		}
		h := uint32(f[pos]) | uint32(f[pos+1])<<8 | uint32(f[pos+2])<<16
		pos += 3
		size := int(h >> 3)
		if h>>1&3 == 1 { // RLE: one byte repeated
			size = 1
		}
		pos += size
		last = h&1 != 0
	}
	if fhd&4 != 0 {
		pos += 4 // checksum
	}
	if pos != len(f) {
		t.Fatalf("zstd frame of %d bytes: %d after %d blocks", len(f), pos, n)
	}
	return n
}

// TestDictionaryGiveUpShapes: the early give-up of byte-array dictionaries
// on a list column (segments, a third of its rows empty), an optional one
// (consent_string, three rows in four null) and a column distinct for its
// first 3,000 rows and then one of three values (device.user_agent, whose
// PLAIN pages must then compress; its dictionary would have paid, 10 %
// smaller, but the rule cannot know); and not on campaign_id, of which one
// value in 32 repeats (its dictionary is dropped when its first page is
// full), while records that fail late, after adding new values to the
// dictionaries, are rolled back around its 2,048th value: the file is byte
// for byte the one written without them (fails when rollback leaves their
// entries in the dictionary), and DuckDB and parquet-go read every value
// back.
func TestDictionaryGiveUpShapes(t *testing.T) {
	const n = 20_000
	r := rand.New(rand.NewPCG(16, 16))
	hex := func() string { return fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()) }
	type want struct {
		segs                     []string
		consent, campaign, agent string
		hasConsent               bool
	}
	wants := make([]want, n)
	var good, mixed [][]byte
	for i := range n {
		m := adtrack.Impression(r, i, adtrack.CorpusBase, time.Second)
		w := &wants[i]
		if k := i % 3; k > 0 {
			for range k {
				w.segs = append(w.segs, hex())
			}
		}
		m.Segments = w.segs
		m.ConsentString = nil
		if i%4 == 0 {
			w.consent, w.hasConsent = hex(), true
			m.ConsentString = &w.consent
		}
		w.campaign = hex()
		if i%32 == 0 {
			w.campaign = "repeated"
		}
		m.CampaignId = w.campaign
		w.agent = hex()
		if i >= 3000 {
			w.agent = []string{"agent-a", "agent-b", "agent-c"}[i%3]
		}
		m.Device.UserAgent = w.agent
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, b)
		// Two records rolled back before each row around the 2,048th:
		// new values in every byte-array column, then invalid UTF-8.
		for k := range 2 * bool2int(i >= 1990 && i < 2110) {
			bad := proto.Clone(m).(*adtrackpb.AdImpression)
			bad.ImpressionId, bad.CampaignId, bad.Segments = hex(), hex(), []string{hex()}
			bad.Device.UserAgent = fmt.Sprint("rolled back ", i, k)
			bad.ConsentString = nil
			b, err := proto.Marshal(bad)
			if err != nil {
				t.Fatal(err)
			}
			b = protowire.AppendTag(b, 26, protowire.BytesType)
			mixed = append(mixed, protowire.AppendBytes(b, []byte("consent\xff")))
		}
		mixed = append(mixed, good[i])
	}
	tab := adTable(t, schema.Options{})
	// inDict: which of the four columns are still dictionary-encoded once
	// 4*dictProbeValues+pageCheckRows rows are written (consent_string has
	// a value in every fourth row).
	const probeRow = 4*dictProbeValues + pageCheckRows
	files := func(msgs [][]byte) (*mem.Store, []File, map[string]bool) {
		st := mem.New()
		w, err := NewTable(Config{}, tab, st)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		off := 0
		inDict := map[string]bool{}
		for _, m := range msgs {
			err := w.Write(ctx, m, Kafka{Topic: "ads", Offset: int64(off), Timestamp: time.UnixMilli(int64(off))})
			var de *DecodeError
			if errors.As(err, &de) {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			if off++; off == probeRow {
				for _, c := range w.order[0].cols {
					inDict[strings.Join(c.spec.path, ".")] = c.dictMode || len(c.dictOffs) > 0
				}
			}
		}
		fs, err := w.Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 {
			t.Fatalf("%d files, want 1", len(fs))
		}
		return st, fs, inDict
	}
	stA, fa, inDict := files(good)
	stB, fb, _ := files(mixed)
	b := readStored(t, stA, fa[0].Path)
	if !bytes.Equal(readStored(t, stB, fb[0].Path), b) {
		t.Errorf("the file written with records rolled back differs from the one without")
	}
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range pf.Metadata().RowGroups[0].Columns {
		md := c.MetaData
		p := strings.Join(md.PathInSchema, ".")
		locs := pf.OffsetIndexes()[i].PageLocations
		switch p {
		case "segments.list.element", "consent_string", "device.user_agent", "campaign_id":
			// No dictionary pays for any of them: campaign_id's is
			// dropped when its first page is full, the others' early.
			if slices.Contains(md.Encoding, format.RLEDictionary) {
				t.Errorf("%s: encodings %v, want PLAIN", p, md.Encoding)
			}
		default:
			continue
		}
		if inDict[p] != (p == "campaign_id") {
			t.Errorf("%s: dictionary-encoded at row %d: %v", p, probeRow, inDict[p])
		}
		// The first page is cut where the dictionary's would have been
		// (4 bytes a value and the levels: 13,120 rows, segments' 9,840,
		// consent_string's whole file), not at 124 KiB of these 36-byte
		// PLAIN values (about 3,500 rows) nor at the give-up.
		if len(locs) > 1 && locs[1].FirstRowIndex < 4*dictProbeValues {
			t.Errorf("%s: pages %+v, want the first to go on to where its dictionary's would have been cut", p, locs[:2])
		}
		if p == "device.user_agent" {
			t.Logf("%s: %d bytes, %v", p, md.TotalCompressedSize, md.Encoding)
		}
		if p == "device.user_agent" && md.TotalCompressedSize > md.TotalUncompressedSize/2 {
			t.Errorf("%s: %d bytes compressed of %d: its repeated values were not compressed", p, md.TotalCompressedSize, md.TotalUncompressedSize)
		}
	}
	rows := readRows(t, export(t, stA, fa))
	if len(rows) != n {
		t.Fatalf("DuckDB read %d rows, want %d", len(rows), n)
	}
	for i, row := range rows {
		w := wants[i]
		var segs []string
		for _, s := range row["segments"].([]any) {
			segs = append(segs, s.(string))
		}
		consent, _ := row["consent_string"].(string)
		dev := row["device"].(map[string]any)
		if !slices.Equal(segs, w.segs) || consent != w.consent || (row["consent_string"] != nil) != w.hasConsent ||
			row["campaign_id"] != w.campaign || dev["user_agent"] != w.agent {
			t.Fatalf("DuckDB row %d: segments %v, consent %v, campaign %v, agent %v; want %+v", i, segs, row["consent_string"], row["campaign_id"], dev["user_agent"], w)
		}
	}
	parquetGoRows(t, b, n, [][]string{{"consent_string"}, {"device", "user_agent"}, {"campaign_id"}}, func(i int, v []parquet.Value) {
		w := wants[i]
		if v[0].IsNull() == w.hasConsent || !v[0].IsNull() && v[0].String() != w.consent || v[1].String() != w.agent || v[2].String() != w.campaign {
			t.Fatalf("parquet-go row %d: %v, want %+v", i, v, w)
		}
	})
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestDictionaryGivenUpEarlyOnePage: in a file of 10,800 rows (a day of
// the benchmark corpus, BenchmarkWriterDay's files), a column of distinct
// 32-character hex ids gives its dictionary up early and is one PLAIN page,
// as before the early give-up, which zstd compresses smaller than the same
// values in pages of 124 KiB (the column without a dictionary); the ids
// read back. Cut at the give-up (237baff), the column was 4 pages and
// 193,941 bytes instead of 186,094 (124 KiB pages: 199,478); with the
// page going on PLAIN to 124 KiB, 199,478.
func TestDictionaryGivenUpEarlyOnePage(t *testing.T) {
	const n = 10_800
	ids := make([]string, n)
	b, rows := writeImpressions(t, Config{}, n, func(i int, m *adtrackpb.AdImpression) { ids[i] = m.ImpressionId })
	plain, _ := writeImpressions(t, Config{NoDictionary: true}, n, func(int, *adtrackpb.AdImpression) {})
	md, pmd := chunkMeta(t, b, "impression_id"), chunkMeta(t, plain, "impression_id")
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range pf.Metadata().RowGroups[0].Columns {
		if c.MetaData.PathInSchema[0] == "impression_id" {
			if locs := pf.OffsetIndexes()[i].PageLocations; len(locs) != 1 {
				t.Errorf("impression_id: %d pages, want 1", len(locs))
			}
		}
	}
	t.Logf("impression_id: %d bytes in one page, %d in pages of 124 KiB", md.TotalCompressedSize, pmd.TotalCompressedSize)
	if slices.Contains(md.Encoding, format.RLEDictionary) || md.TotalCompressedSize >= pmd.TotalCompressedSize {
		t.Errorf("impression_id: %v, %d bytes; want PLAIN, fewer than %d", md.Encoding, md.TotalCompressedSize, pmd.TotalCompressedSize)
	}
	for i, row := range rows {
		if row["impression_id"] != ids[i] {
			t.Fatalf("row %d impression_id %v, want %s", i, row["impression_id"], ids[i])
		}
	}
}
