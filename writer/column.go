package writer

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// column buffers one leaf column of one open file: the current page as raw
// levels and PLAIN-encoded values (or dictionary indexes), and the finished
// pages compressed. Values of the row being decoded sit after the committed
// marks until commit; rollback truncates to the marks. Pages are cut only at
// commits, so a page never holds part of a row.
type column struct {
	spec           *colSpec
	hasRep, hasDef bool // copies of spec.maxRep > 0, spec.maxDef > 0 for the hot path

	reps, defs []uint8
	vals       []byte  // PLAIN values (byte arrays: 4-byte length + bytes)
	idx        []int32 // dictionary indexes in dictionary mode
	// firstPlain is the PLAIN size of the first page's dictionary-encoded
	// values: flushPage expands them to it when the dictionary does not
	// pay, so bufferedBytes counts it (many copies of one large value
	// are one small dictionary entry until then).
	firstPlain int
	bools      []byte // one byte per boolean value
	nvals      int    // non-null values in the page

	pageFirstRow int64 // file row index of the page's first row

	// dictionary: a byte-array column's is built by emit (dictMode, dict,
	// idx), a numeric column's when a page is flushed (numDict, ndict);
	// both keep their entries in dictData and dictOffs.
	dictMode  bool
	dict      dictTable
	numDict   bool // INT32/INT64/FLOAT/DOUBLE pages are dictionary-encoded
	ndict     numTable
	dictData  []byte   // PLAIN-encoded dictionary values
	dictOffs  []uint32 // start of each entry in dictData (at its length prefix)
	dictPages int      // data pages written in dictionary mode
	seen      []uint32 // per dictionary entry: the page epoch it was last seen in
	epoch     uint32
	// rec points to the writer's count of records begun; dictRec is the
	// record that last added an entry and dictMark the entries before it,
	// so that rolling that record back also takes its entries out of the
	// dictionary (the two-pass decode may write what the one-pass decode
	// rolled back, and the file must be the same as if it had not run).
	rec      *uint64
	dictRec  uint64
	dictMark int32
	// mark is where rollback last found the page's committed rows to end,
	// so that it counts on from there: see rowMark.
	mark rowMark

	// finished pages
	sealed    [][]byte // earlier segments of the chunk: large pages stay whole (flushPage)
	sealedLen int      // bytes in sealed
	chunk     []byte   // page headers + compressed pages, in order, after sealed
	pages     []pageInfo
	numVals   int64 // levels (or values) written, for ColumnMetaData.NumValues
	uncompr   int64 // total uncompressed size including headers
	noIndex   bool  // a page had no orderable values (all NaN): no column index
	stats     chunkStats
	encoding  format.Encoding // encoding of the last data page
	plainPgs  int             // data pages written PLAIN
	deltaPgs  int             // data pages written DELTA_BINARY_PACKED
	comp      compState       // whether the next page is worth compressing
	// large: a value over maxDictBytes or a page of at least keep bytes
	// went into this file, so reset drops the buffers grown past keep;
	// buffers grown by ordinary data (a chunk of many pages) are kept.
	large bool
	// plainFirst: pageFull gave the dictionary up early, and the first
	// page, PLAIN, is cut where the dictionary's would have been.
	plainFirst bool
}

type pageInfo struct {
	off, size int64 // relative to the data pages' start in chunk
	firstRow  int64
	nullCount int64
	nullPage  bool
	min, max  []byte // PLAIN-encoded bounds (column index), nil for null pages
}

// chunkStats accumulates the column chunk's statistics over its pages.
type chunkStats struct {
	has       bool
	min, max  []byte // PLAIN-encoded value (byte arrays: the bytes)
	nullCount int64
	nan       bool // a NaN was seen: min/max of floats are not reliable
}

// colSpec is what a column needs to know about its leaf, shared by every
// file of the writer.
type colSpec struct {
	index          int
	path           []string
	kind           parquet.Kind
	typeLen        int
	maxRep, maxDef uint8
	str            bool // STRING logical type
	dict           bool // dictionary-encoded where it pays: byte arrays, INT32, INT64, FLOAT, DOUBLE (not with Config.NoDictionary)
	repBits        int
	defBits        int
}

func bitsFor(maxLevel uint8) int {
	n := 0
	for v := maxLevel; v != 0; v >>= 1 {
		n++
	}
	return n
}

func newColumn(spec *colSpec) *column {
	return &column{spec: spec, dictMode: spec.byteDict(), numDict: spec.numDict(), hasRep: spec.maxRep > 0, hasDef: spec.maxDef > 0}
}

// byteDict and numDict report how a column starts: with emit's
// byte-array dictionary, or with a numeric dictionary built at page flush.
func (s *colSpec) byteDict() bool { return s.dict && s.kind == parquet.ByteArray }
func (s *colSpec) numDict() bool  { return s.dict && s.kind != parquet.ByteArray }

// levels appends the levels of one entry.
func (c *column) levels(rep, def uint8) {
	if c.hasRep {
		c.reps = append(c.reps, rep)
	}
	if c.hasDef {
		c.defs = append(c.defs, def)
	}
}

func (c *column) null(rep, def uint8) { c.levels(rep, def) }

func (c *column) int32(rep, def uint8, v int32) {
	c.levels(rep, def)
	c.vals = binary.LittleEndian.AppendUint32(c.vals, uint32(v))
	c.nvals++
}

func (c *column) int64(rep, def uint8, v int64) {
	c.levels(rep, def)
	c.vals = binary.LittleEndian.AppendUint64(c.vals, uint64(v))
	c.nvals++
}

func (c *column) float(rep, def uint8, v float32) {
	c.levels(rep, def)
	c.vals = binary.LittleEndian.AppendUint32(c.vals, math.Float32bits(v))
	c.nvals++
}

func (c *column) double(rep, def uint8, v float64) {
	c.levels(rep, def)
	c.vals = binary.LittleEndian.AppendUint64(c.vals, math.Float64bits(v))
	c.nvals++
}

func (c *column) boolean(rep, def uint8, v bool) {
	c.levels(rep, def)
	b := byte(0)
	if v {
		b = 1
	}
	c.bools = append(c.bools, b)
	c.nvals++
}

// decimal20 appends a uint64 as FIXED_LEN_BYTE_ARRAY(9) DECIMAL(20,0).
func (c *column) decimal20(rep, def uint8, v uint64) {
	c.levels(rep, def)
	c.vals = append(c.vals, 0)
	c.vals = binary.BigEndian.AppendUint64(c.vals, v)
	c.nvals++
}

func (c *column) byteArray(rep, def uint8, b []byte) {
	if len(b) > maxDictBytes {
		c.large = true
		if c.dictMode && c.dictPages == 0 {
			c.dropDictionary(0)
		}
	}
	c.levels(rep, def)
	c.nvals++
	if c.dictMode {
		c.idx = append(c.idx, c.dictIndex(b))
		if c.dictPages == 0 {
			c.firstPlain += 4 + len(b)
		}
		return
	}
	c.vals = binary.LittleEndian.AppendUint32(c.vals, uint32(len(b)))
	c.vals = append(c.vals, b...)
}

// dropDictionary turns the first page from dictionary indexes into PLAIN
// values and leaves dictionary mode for the rest of the file. A value larger
// than maxDictBytes does it before it is added (flushPage would drop that
// dictionary anyway): the value is then held once, in vals, instead of in
// the dictionary and again in vals when the page is written. The page's
// buffer is sized for its values so far or for room bytes, the larger.
func (c *column) dropDictionary(room int) {
	// The PLAIN page's size first: grown by append, a page of distinct
	// values (the whole of a small file's column, say) was allocated about
	// twice over.
	n := len(c.vals)
	for _, i := range c.idx {
		n += 4 + int(binary.LittleEndian.Uint32(c.dictData[c.dictOffs[i]:]))
	}
	c.vals = slices.Grow(c.vals, max(n, room)-len(c.vals))
	for _, i := range c.idx {
		off := c.dictOffs[i]
		n := binary.LittleEndian.Uint32(c.dictData[off:])
		c.vals = append(c.vals, c.dictData[off:off+4+n]...)
	}
	c.idx = c.idx[:0]
	c.dictMode = false
	c.dict.reset()
	c.dictData, c.dictOffs = c.dictData[:0], c.dictOffs[:0]
}

// rowMark is a position in a column's page that rollback found: the
// page's first rows rows end at rep (repeated columns) and, for a PLAIN
// byte-array column, its first valN values at byte valPos. Rollback counts
// from the mark, not from the page start, and moves it to what it keeps,
// so the rollbacks of a page walk each entry once between them: a record
// that rolls back costs its own entries, not the page's (a producer that
// merges messages has every record fall back to the two passes). The mark
// is of the page that starts at file row first; a new page or file makes
// it stale, and a stale mark counts as the page start.
type rowMark struct {
	first        int64
	rows, rep    int
	valN, valPos int
	walked       int // entries and values counted, for tests
}

// rollback removes the entries of the row being decoded: everything after
// the first rows entries of the page. Commit is free (the file's row count
// moves); rollback finds the row's start by counting on from c.mark.
func (c *column) rollback(rows int) {
	m := &c.mark
	if m.first != c.pageFirstRow || m.rows > rows || m.rep > len(c.reps) || m.valPos > len(c.vals) {
		*m = rowMark{first: c.pageFirstRow, walked: m.walked}
	}
	sp := c.spec
	var entries int
	switch {
	case sp.maxDef > 0:
		entries = len(c.defs)
	case sp.maxRep > 0:
		entries = len(c.reps)
	default:
		entries = c.nvals
	}
	keep := rows
	if sp.maxRep > 0 {
		keep = len(c.reps)
		seen := m.rows
		for i := m.rep; i < len(c.reps); i++ {
			if c.reps[i] == 0 {
				if seen == rows {
					keep = i
					break
				}
				seen++
			}
		}
		m.walked += keep - m.rep
		m.rows, m.rep = seen, keep
	}
	c.truncate(keep, entries)
	// After truncate: its first page's values are counted in firstPlain
	// from the dictionary, which dropEntries cuts.
	if c.rec != nil && c.dictRec == *c.rec && c.dictMode {
		c.dropEntries(c.dictMark)
	}
}

// shrink reallocates the page buffers that a rolled-back record (one too
// large to buffer, say) grew beyond keep bytes, to what the page holds.
func (c *column) shrink(keep int) {
	c.reps, c.defs, c.vals, c.bools = shrunk(c.reps, keep), shrunk(c.defs, keep), shrunk(c.vals, keep), shrunk(c.bools, keep)
	c.idx = shrunk(c.idx, keep/4)
}

func shrunk[T any](b []T, keep int) []T {
	if cap(b) <= keep || len(b) > keep/2 {
		return b
	}
	return slices.Clone(b)
}

func (c *column) truncate(keep, entries int) {
	if keep >= entries {
		return
	}
	sp := c.spec
	removed := entries - keep
	if sp.maxDef > 0 {
		removed = 0
		for _, d := range c.defs[keep:] {
			if d == sp.maxDef {
				removed++
			}
		}
		c.defs = c.defs[:keep]
	}
	if sp.maxRep > 0 {
		c.reps = c.reps[:keep]
	}
	c.nvals -= removed
	switch {
	case c.dictMode:
		if c.dictPages == 0 { // byteArray and dictString counted them
			for _, i := range c.idx[c.nvals:] {
				c.firstPlain -= 4 + len(c.dictValue(i))
			}
		}
		c.idx = c.idx[:c.nvals]
	case sp.kind == parquet.Boolean:
		c.bools = c.bools[:c.nvals]
	case sp.kind == parquet.ByteArray:
		m := &c.mark
		if m.valN > c.nvals {
			m.valN, m.valPos = 0, 0
		}
		off := m.valPos
		for range c.nvals - m.valN {
			off += 4 + int(binary.LittleEndian.Uint32(c.vals[off:]))
		}
		m.walked += c.nvals - m.valN
		m.valN, m.valPos = c.nvals, off
		c.vals = c.vals[:off]
	default:
		c.vals = c.vals[:c.nvals*valueSize(sp)]
	}
}

func valueSize(sp *colSpec) int {
	switch sp.kind {
	case parquet.Int32, parquet.Float:
		return 4
	case parquet.FixedLenByteArray:
		return sp.typeLen
	}
	return 8
}

// pageFull reports whether the current page is to be cut at the next
// commit: at pb raw bytes; a PLAIN byte-array page at plainBytesPage(pb);
// and a first page given up early where its dictionary's would have been
// cut (below). It also gives a byte-array column's dictionary up early:
// when its first page's values so far, dictProbeValues or more, are (all
// but a 64th) distinct — random ids, hashes — checked at each commit that
// checks pages until that page is full, the dictionary does not pay
// (unless a few long values repeat), so the page turns PLAIN there
// (dropDictionary) instead of when it is full. Counted at 4 bytes an
// index, that page would otherwise hash and store about pb/4 values before
// it is re-encoded (2 % of the writer's instructions on the 545-B corpus).
//
// The page goes on to the size its indexes would have had (pb at 4 bytes
// a value, and the levels: about 13,000–16,000 values at the default) or
// to maxDictBytes of values, not to plainBytesPage, so that in a file of
// fewer rows (a day's file of the benchmark corpus) the column is one
// page, as before the early give-up. zstd's level 1 compresses random hex
// ids so 4 % smaller, with more instructions: a fresh block either takes
// every value's length prefix as a repeat match or, having found nothing
// in its first kilobyte, skips to its end as literals (17.2 against 18.9
// bytes a value), and the later blocks of a long page keep the first
// one's matches.
func (c *column) pageFull(pb int) bool {
	switch {
	case c.dictMode:
		if c.dictPages == 0 && len(c.idx) >= dictProbeValues && len(c.dictOffs) > len(c.idx)-len(c.idx)/64 {
			// The page goes on (below): its buffer doubles as it fills,
			// not in append's smaller steps, and bufferedBytes counts
			// the room (at most the page again).
			c.dropDictionary(2 * c.firstPlain)
			c.plainFirst = true
			return false
		}
	case c.spec.kind == parquet.ByteArray:
		if c.plainFirst {
			if len(c.reps)+len(c.defs)+4*c.nvals >= pb || len(c.vals) >= maxDictBytes {
				return true
			}
			if cap(c.vals)-len(c.vals) < len(c.vals)/8 {
				c.vals = slices.Grow(c.vals, len(c.vals))
			}
			return false
		}
		return c.pageSize() >= plainBytesPage(pb)
	}
	return c.pageSize() >= pb
}

// plainBytesPage is where a PLAIN byte-array page is cut: twice PageBytes
// less a sixteenth, so that at the default the page and the few rows it
// overshoots by stay under 128 KiB (zstd's largest block). Pages of ids,
// URLs and hex strings compress better the longer they are (the benchmark
// corpus: 0.5 % smaller files than with 64 KiB pages), and there are few
// such columns, so the file's memory grows little.
func plainBytesPage(pb int) int { return 2*pb - pb/16 }

// dictProbeValues is how many values of a byte-array column's first page
// pageFull waits for before it gives the dictionary up.
const dictProbeValues = 2048

// pageSize estimates the raw size of the current page.
func (c *column) pageSize() int {
	return len(c.reps) + len(c.defs) + len(c.vals) + 4*len(c.idx) + len(c.bools)>>3
}

// bufferedBytes is the memory this column holds for its file.
func (c *column) bufferedBytes() int {
	n := c.chunkLen() + c.pageSize() + len(c.dictData) + 24*len(c.dictOffs)
	if c.dictMode && c.dictPages == 0 {
		n += c.firstPlain
	}
	if c.plainFirst {
		n += cap(c.vals) - len(c.vals) // reserved for the page (pageFull)
	}
	return n
}

// heldBytes is the memory this column's buffers take: bufferedBytes with
// every buffer counted by its capacity, not its length (a file opened with
// a spare's buffers holds their capacity from its first row).
func (c *column) heldBytes() int {
	n := c.capBytes() + c.sealedLen + 24*len(c.dictOffs)
	if c.dictMode && c.dictPages == 0 {
		n += c.firstPlain
	}
	return n
}

// capBytes is the capacity of the column's buffers.
func (c *column) capBytes() int {
	return cap(c.chunk) + cap(c.vals) + cap(c.reps) + cap(c.defs) + cap(c.bools) + 4*cap(c.idx) + cap(c.dictData)
}

// chunkLen is the size of the column's finished pages.
func (c *column) chunkLen() int { return c.sealedLen + len(c.chunk) }

// dictValue returns entry i of the dictionary without its length prefix.
func (c *column) dictValue(i int32) []byte {
	off := c.dictOffs[i]
	n := binary.LittleEndian.Uint32(c.dictData[off:])
	return c.dictData[off+4 : off+4+n]
}

// encoder holds scratch buffers shared by the columns of a writer.
type encoder struct {
	page    []byte
	levels  []byte
	ints    []int32 // a numeric page's dictionary indexes (column.indexValues)
	comp    []byte
	header  bytes.Buffer
	proto   thrift.CompactProtocol
	codec   codec
	alt     []byte // the page with its values DELTA_BINARY_PACKED
	compAlt []byte // alt compressed
	delta   bool   // compressPage chose DELTA_BINARY_PACKED
	// keep is the capacity (bytes) beyond which a page buffer or scratch
	// buffer is dropped after use instead of kept for the next page; at
	// least 1 MiB and 4 pages (Writer.New).
	keep int
}

// flushPage encodes, compresses and appends the committed page; the page
// must hold only committed entries.
func (c *column) flushPage(e *encoder, fileRows int64) error {
	numEntries := c.nvals
	if c.spec.maxDef > 0 {
		numEntries = len(c.defs)
	} else if c.spec.maxRep > 0 {
		numEntries = len(c.reps)
	}
	if fileRows == c.pageFirstRow {
		return nil
	}
	// Dictionary or not: a dictionary that does not pay on the first page
	// is dropped (the page is re-encoded PLAIN); one that grows too large
	// later stops growing and later pages are PLAIN.
	if c.dictMode && c.dictPages == 0 {
		// On the first page: keep the dictionary when dictionary page +
		// indexes are clearly smaller than the PLAIN values.
		plain := 0
		for _, i := range c.idx {
			plain += 4 + int(binary.LittleEndian.Uint32(c.dictData[c.dictOffs[i]:]))
		}
		dictSize := len(c.dictData) + len(c.idx)*bitsFor32(uint32(len(c.dictOffs)))/8
		if len(c.dictData) > maxDictBytes || 4*dictSize > 3*plain {
			c.dropDictionary(0)
		}
	}

	numDict := c.numDict && c.indexValues(e)
	ps := pageStats(c)
	hs := ps // header and column index bounds: byte arrays truncated
	if c.spec.kind == parquet.ByteArray && ps.has {
		mx, ok := truncMax(ps.max)
		if ok {
			hs.min, hs.max = truncMin(ps.min), mx
		} else {
			hs.has, hs.min, hs.max = false, nil, nil
			c.noIndex = true
		}
	}
	p := e.page[:0]
	var err error
	if c.spec.maxRep > 0 {
		p, err = appendLevels(p, e, c.reps, c.spec.repBits)
		if err != nil {
			return err
		}
	}
	if c.spec.maxDef > 0 {
		p, err = appendLevels(p, e, c.defs, c.spec.defBits)
		if err != nil {
			return err
		}
	}
	levelsLen := len(p)
	enc := format.Plain
	inVals := false // p is c.vals' buffer, not the encoder's scratch
	switch {
	case c.dictMode || numDict:
		enc = format.RLEDictionary
		bw := 0
		if n := len(c.dictOffs); n > 1 {
			bw = bitsFor32(uint32(n - 1))
		}
		p = append(p, byte(bw))
		idx := c.idx
		if numDict {
			idx = e.ints
		}
		e.levels, err = (&rle.Encoding{BitWidth: bw}).EncodeInt32(e.levels[:0], idx)
		if err != nil {
			return err
		}
		p = append(p, e.levels...)
		c.dictPages++
	case c.spec.kind == parquet.Boolean:
		var acc byte
		for i, b := range c.bools {
			acc |= b << (i & 7)
			if i&7 == 7 {
				p = append(p, acc)
				acc = 0
			}
		}
		if len(c.bools)&7 != 0 {
			p = append(p, acc)
		}
		c.plainPgs++
	case c.spec.kind == parquet.ByteArray && len(c.vals) >= e.keep && cap(c.vals)-len(c.vals) >= len(p):
		// A page of large values (a dead-lettered record of many MB, say):
		// the levels move in front of the values in their own buffer
		// rather than the values being copied after the levels.
		n := len(p)
		v := c.vals[:len(c.vals)+n]
		copy(v[n:], v[:len(c.vals)])
		copy(v, p)
		p, inVals = v, true
		c.plainPgs++
	default:
		p = append(p, c.vals...)
		c.plainPgs++
	}
	scratch := e.page
	e.page = p
	// A large page that does not compress is written from the values'
	// buffer: no second buffer of its size, compressed or stored.
	raw := e.leaveRaw(p, inVals)
	if raw {
		e.delta = false // left by compressPage for an earlier page
	} else if err := e.compressPage(c, levelsLen, enc == format.RLEDictionary); err != nil {
		e.page = scratch
		return err
	}
	p = e.page
	if len(p) >= e.keep {
		c.large = true // a record of many values, say
	}
	if inVals {
		// Never the shared scratch; otherwise keep the scratch as it grew
		// (restoring the old one made every page flush allocate anew).
		e.page = scratch
	}
	compSize := len(e.comp)
	if raw {
		compSize = e.rawSize(p)
	}
	if e.delta {
		enc = format.DeltaBinaryPacked
		c.plainPgs--
		c.deltaPgs++
	}
	hdr := format.PageHeader{
		Type:                 format.DataPage,
		UncompressedPageSize: int32(len(p)),
		CompressedPageSize:   int32(compSize),
		DataPageHeader: thrift.New(format.DataPageHeader{
			NumValues:               int32(numEntries),
			Encoding:                enc,
			DefinitionLevelEncoding: format.RLE,
			RepetitionLevelEncoding: format.RLE,
			Statistics:              hs.format(),
		}),
	}
	h, err := e.marshal(&hdr)
	if err != nil {
		return err
	}
	off := int64(c.sealedLen + len(c.chunk))
	if raw || len(e.comp) >= e.keep {
		// A large compressed page (one that does not compress, say)
		// becomes a segment of its own instead of a copy in chunk.
		if len(c.chunk) > 0 {
			c.sealed = append(c.sealed, c.chunk)
			c.sealedLen += len(c.chunk)
			c.chunk = nil
		}
		if raw {
			c.sealed = e.appendRaw(c.sealed, h, p)
			c.vals = nil // the file's now
		} else {
			c.sealed = append(c.sealed, bytes.Clone(h), e.comp)
			e.comp = nil
		}
		c.sealedLen += len(h) + compSize
	} else {
		c.chunk = append(c.chunk, h...)
		c.chunk = append(c.chunk, e.comp...)
	}
	c.pages = append(c.pages, pageInfo{
		off: off, size: int64(c.sealedLen+len(c.chunk)) - off, firstRow: c.pageFirstRow,
		nullCount: ps.nullCount, nullPage: c.nvals == 0, min: hs.min, max: hs.max,
	})
	if c.nvals > 0 && !hs.has {
		c.noIndex = true // e.g. only NaNs: the column index needs bounds
	}
	c.stats.merge(c.spec, &ps)
	c.numVals += int64(numEntries)
	c.uncompr += int64(len(h) + len(p))
	c.encoding = enc

	if (c.dictMode || c.numDict) && len(c.dictData) > maxDictBytes {
		// The dictionary stops here: later pages are PLAIN, or DELTA where
		// the next page, a probe (compState), finds it smaller.
		c.dictMode, c.numDict = false, false
		c.comp.pages = 0
		c.dict.reset()
		c.ndict.reset()
	}
	c.reps, c.defs, c.vals, c.idx, c.bools, c.nvals = trim(c.reps, e.keep), trim(c.defs, e.keep), trim(c.vals, e.keep), trim(c.idx, e.keep/4), trim(c.bools, e.keep), 0
	e.trimScratch()
	c.pageFirstRow = fileRows
	c.plainFirst = false
	return nil
}

// trim empties b for reuse, or drops it when one large page or value grew
// it beyond keep elements: buffered bytes count lengths, not capacities,
// so a buffer kept at the size of a record long gone would hold memory
// that memory_limit does not see.
func trim[T any](b []T, keep int) []T {
	if cap(b) > keep {
		return nil
	}
	return b[:0]
}

// trimScratch drops the encoder's scratch buffers that a large page grew
// beyond e.keep bytes.
func (e *encoder) trimScratch() {
	e.page, e.levels, e.comp, e.alt, e.compAlt = trim(e.page, e.keep), trim(e.levels, e.keep), trim(e.comp, e.keep), trim(e.alt, e.keep), trim(e.compAlt, e.keep)
	e.ints = trim(e.ints, e.keep/4)
	if e.header.Cap() > e.keep {
		e.header = bytes.Buffer{}
	}
}

func bitsFor32(v uint32) int {
	n := 0
	for ; v != 0; v >>= 1 {
		n++
	}
	return n
}

func appendLevels(p []byte, e *encoder, levels []uint8, bw int) ([]byte, error) {
	var err error
	e.levels, err = (&rle.Encoding{BitWidth: bw}).EncodeLevels(e.levels[:0], levels)
	if err != nil {
		return p, err
	}
	p = binary.LittleEndian.AppendUint32(p, uint32(len(e.levels)))
	return append(p, e.levels...), nil
}

func (e *encoder) marshal(v any) ([]byte, error) {
	e.header.Reset()
	if err := thrift.NewEncoder(e.proto.NewWriter(&e.header)).Encode(v); err != nil {
		return nil, err
	}
	return e.header.Bytes(), nil
}

// dictPage returns the encoded dictionary page (header + compressed data),
// or nil when the column wrote no dictionary-encoded page.
func (c *column) dictPage(e *encoder) ([]byte, int64, error) {
	if c.dictPages == 0 {
		return nil, 0, nil
	}
	comp, err := e.codec.encode(e.comp[:0], c.dictData)
	if err != nil {
		return nil, 0, err
	}
	e.comp = comp
	hdr := format.PageHeader{
		Type:                 format.DictionaryPage,
		UncompressedPageSize: int32(len(c.dictData)),
		CompressedPageSize:   int32(len(comp)),
		DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: int32(len(c.dictOffs)), Encoding: format.Plain}),
	}
	h, err := e.marshal(&hdr)
	if err != nil {
		return nil, 0, err
	}
	out := make([]byte, 0, len(h)+len(comp))
	out = append(append(out, h...), comp...)
	return out, int64(len(h) + len(c.dictData)), nil
}

// ---- statistics -----------------------------------------------------------

// pageStats computes min, max and null count of the current page.
func pageStats(c *column) chunkStats {
	var s chunkStats
	numEntries := len(c.defs)
	if c.spec.maxDef == 0 {
		numEntries = c.nvals
	}
	s.nullCount = int64(numEntries - c.nvals)
	if c.nvals == 0 {
		return s
	}
	switch c.spec.kind {
	case parquet.Boolean:
		lo, hi := byte(1), byte(0)
		for _, b := range c.bools {
			lo, hi = min(lo, b), max(hi, b)
		}
		s.has, s.min, s.max = true, []byte{lo}, []byte{hi}
	case parquet.Int32:
		v := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(c.vals))), len(c.vals)/4)
		lo, hi := v[0], v[0]
		for _, x := range v[1:] {
			lo, hi = min(lo, x), max(hi, x)
		}
		s.has = true
		s.min = binary.LittleEndian.AppendUint32(nil, uint32(lo))
		s.max = binary.LittleEndian.AppendUint32(nil, uint32(hi))
	case parquet.Int64:
		v := unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(c.vals))), len(c.vals)/8)
		lo, hi := v[0], v[0]
		for _, x := range v[1:] {
			lo, hi = min(lo, x), max(hi, x)
		}
		s.has = true
		s.min = binary.LittleEndian.AppendUint64(nil, uint64(lo))
		s.max = binary.LittleEndian.AppendUint64(nil, uint64(hi))
	case parquet.Float:
		v := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(c.vals))), len(c.vals)/4)
		lo, hi, ok, nan := floatBounds(v)
		s.nan = s.nan || nan
		if ok {
			s.has = true
			s.min = binary.LittleEndian.AppendUint32(nil, math.Float32bits(lo))
			s.max = binary.LittleEndian.AppendUint32(nil, math.Float32bits(hi))
		}
	case parquet.Double:
		v := unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(c.vals))), len(c.vals)/8)
		lo, hi, ok, nan := floatBounds(v)
		s.nan = s.nan || nan
		if ok {
			s.has = true
			s.min = binary.LittleEndian.AppendUint64(nil, math.Float64bits(lo))
			s.max = binary.LittleEndian.AppendUint64(nil, math.Float64bits(hi))
		}
	case parquet.FixedLenByteArray:
		n := c.spec.typeLen
		b := newByteBounds(c.vals[:n])
		for i := n; i+n <= len(c.vals); i += n {
			b.add(c.vals[i : i+n])
		}
		s.has, s.min, s.max = true, bytes.Clone(b.lo), bytes.Clone(b.hi)
	case parquet.ByteArray:
		// Loops without a visit closure: this runs for every value of
		// every byte-array page. lo <= hi, so a value below lo is not
		// compared with hi.
		var b byteBounds
		if c.dictMode {
			// Compare each distinct entry of the page once.
			c.epoch++
			if len(c.seen) < len(c.dictOffs) {
				c.seen = append(c.seen, make([]uint32, len(c.dictOffs)-len(c.seen))...)
			}
			b = newByteBounds(c.dictValue(c.idx[0]))
			seen, epoch := c.seen, c.epoch // not reloaded through c in the loop
			for _, i := range c.idx {
				if seen[i] == epoch {
					continue
				}
				seen[i] = epoch
				b.add(c.dictValue(i))
			}
		} else {
			v := c.vals
			n := int(binary.LittleEndian.Uint32(v))
			b = newByteBounds(v[4 : 4+n])
			for off := 4 + n; off+4 <= len(v); {
				n := int(binary.LittleEndian.Uint32(v[off:]))
				b.add(v[off+4 : off+4+n])
				off += 4 + n
			}
		}
		s.has, s.min, s.max = true, bytes.Clone(statPrefix(b.lo)), bytes.Clone(statPrefix(b.hi))
	}
	return s
}

// byteBounds tracks the min and max of byte strings. Statistics compare
// every value of a byte-array page with the bounds; a value's first 8
// bytes as a big-endian number (zero-padded, which keeps the order) decide
// without a call to bytes.Compare unless they equal a bound's: ids, hashes
// and decimals mostly differ there.
type byteBounds struct {
	lo, hi   []byte
	loK, hiK uint64
}

func newByteBounds(x []byte) byteBounds {
	k := prefixKey(x)
	return byteBounds{lo: x, hi: x, loK: k, hiK: k}
}

func (b *byteBounds) add(x []byte) {
	k := prefixKey(x)
	if k < b.loK || k == b.loK && bytes.Compare(x, b.lo) < 0 {
		b.lo, b.loK = x, k
	} else if k > b.hiK || k == b.hiK && bytes.Compare(x, b.hi) > 0 {
		b.hi, b.hiK = x, k
	}
}

func prefixKey(b []byte) uint64 {
	if len(b) >= 8 {
		return binary.BigEndian.Uint64(b)
	}
	return shortKey(b)
}

func shortKey(b []byte) uint64 {
	var k uint64
	for i, c := range b {
		k |= uint64(c) << (56 - 8*i)
	}
	return k
}

// statPrefixBytes is how much of a byte-array bound the statistics keep:
// enough for every bound derived from it (a page header's and the column
// index's maxStatBytes+1, the Delta string statistics' StringPrefix+1
// characters of up to 4 bytes), so a 10 MB value is not copied twice
// (min and max) to compute a 64-byte bound. Cutting is monotone, so the
// bound of the cut values is the bound of the values.
const statPrefixBytes = 256

var _ [statPrefixBytes - max(maxStatBytes+1, 4*(StringPrefix+1))]struct{} // statPrefixBytes is large enough

func statPrefix(b []byte) []byte { return b[:min(len(b), statPrefixBytes)] }

// maxStatBytes bounds byte-array bounds in page headers and the column
// index; longer bounds are truncated (min) or truncated and incremented
// (max) so they stay bounds, or dropped when that is impossible.
const maxStatBytes = 64

func (s *chunkStats) format() format.Statistics {
	st := format.Statistics{NullCount: s.nullCount}
	if s.has {
		st.MinValue, st.MaxValue = s.min, s.max
	}
	return st
}

func (s *chunkStats) merge(spec *colSpec, p *chunkStats) {
	s.nullCount += p.nullCount
	s.nan = s.nan || p.nan
	if !p.has {
		return
	}
	if !s.has {
		s.has, s.min, s.max = true, p.min, p.max
		return
	}
	if compareValues(spec, p.min, s.min) < 0 {
		s.min = p.min
	}
	if compareValues(spec, p.max, s.max) > 0 {
		s.max = p.max
	}
}

// compareValues compares two PLAIN-encoded values of the column's type in
// the Parquet type-defined order.
func compareValues(spec *colSpec, a, b []byte) int {
	switch spec.kind {
	case parquet.Boolean:
		return int(a[0]) - int(b[0])
	case parquet.Int32:
		return cmp3(int32(binary.LittleEndian.Uint32(a)), int32(binary.LittleEndian.Uint32(b)))
	case parquet.Int64:
		return cmp3(int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b)))
	case parquet.Float:
		return cmp3(math.Float32frombits(binary.LittleEndian.Uint32(a)), math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case parquet.Double:
		return cmp3(math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b)))
	}
	return bytes.Compare(a, b)
}

func cmp3[T int32 | int64 | float32 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// truncMin and truncMax shorten byte-array bounds for page statistics.
func truncMin(b []byte) []byte {
	if len(b) <= maxStatBytes {
		return b
	}
	return b[:maxStatBytes]
}

func truncMax(b []byte) ([]byte, bool) {
	if len(b) <= maxStatBytes {
		return b, true
	}
	t := bytes.Clone(b[:maxStatBytes])
	for i := len(t) - 1; i >= 0; i-- {
		if t[i] != 0xff {
			t[i]++
			return t[:i+1], true
		}
	}
	return nil, false
}

// reset empties the column for a new file, keeping its buffers. A file
// that held a large value or page (c.large) keeps only those of at most
// keep bytes: memory_limit counts lengths, not a capacity left by a record
// long gone. Ordinary data's buffers are kept whatever their size (a
// column chunk is often over keep), or every file would regrow them.
func (c *column) reset(keep int) {
	tables := keep
	if !c.large {
		keep = math.MaxInt
	}
	*c = column{
		spec: c.spec, dictMode: c.spec.byteDict(), numDict: c.spec.numDict(), hasRep: c.hasRep, hasDef: c.hasDef,
		reps: trim(c.reps, keep), defs: trim(c.defs, keep), vals: trim(c.vals, keep), idx: trim(c.idx, keep/4), bools: trim(c.bools, keep),
		dict: c.dict, ndict: c.ndict, dictData: trim(c.dictData, keep), dictOffs: c.dictOffs[:0], seen: c.seen, epoch: c.epoch, rec: c.rec,
		chunk: trim(c.chunk, keep), pages: c.pages[:0], // sealed: nil, its segments are the file's
	}
	// The dictionaries' hash tables are dropped beyond keep bytes whatever
	// the data: bufferedBytes counts 24 B an entry while the file is open,
	// a spare's tables not at all.
	if len(c.dict.slots)*int(unsafe.Sizeof(dictSlot{})) > tables {
		c.dict = dictTable{}
	}
	if len(c.ndict.slots)*int(unsafe.Sizeof(numSlot{})) > tables {
		c.ndict = numTable{}
	}
	c.dict.reset()
	c.ndict.reset()
}

// floatBounds returns the min and max of v ignoring NaNs (ok is false when
// every value is NaN or v is empty, nan true when any is NaN), with a zero
// min written as -0 and a zero max as +0, as the Parquet spec asks so that
// readers comparing signed zeros never skip a page wrongly.
func floatBounds[T float32 | float64](v []T) (lo, hi T, ok, nan bool) {
	for _, x := range v {
		if x != x {
			nan = true
			continue
		}
		if !ok {
			lo, hi, ok = x, x, true
			continue
		}
		lo, hi = min(lo, x), max(hi, x)
	}
	if ok {
		if lo == 0 {
			lo = T(math.Copysign(0, -1))
		}
		if hi == 0 {
			hi = 0
		}
	}
	return lo, hi, ok, nan
}
