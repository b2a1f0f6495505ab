package writer

import (
	"bytes"
	"encoding/binary"
	"io"

	"github.com/parquet-go/parquet-go/format"

	"github.com/protolake/protolake/internal/parquetmeta"
)

// openFile is the buffer of one table partition: a Parquet file being
// written (one row group), pages compressed as they fill.
type openFile struct {
	key     string    // partition key (the hive path, "" when unpartitioned)
	values  []*string // partition values, Delta serialization; nil = null
	cols    []*column
	rows    int64
	created int64   // unix nanoseconds of the first row
	arrNull []int64 // per column: rows whose array/map value is null
}

// newOpenFile returns an empty file; rec is the writer's count of records
// begun (column.rec).
func newOpenFile(l *layout, rec *uint64) *openFile {
	f := &openFile{cols: make([]*column, len(l.cols)), arrNull: make([]int64, len(l.cols))}
	for i, s := range l.cols {
		f.cols[i] = newColumn(s)
		f.cols[i].rec = rec
	}
	return f
}

// commitRow makes the decoded row permanent and cuts the pages that are
// full. Sizes are checked every pageCheckRows rows (and after a large
// message), which lets a page overshoot PageBytes by a few rows.
func (f *openFile) commitRow(w *Writer, msgLen int) error {
	f.rows++
	if f.rows&(pageCheckRows-1) != 0 && msgLen < w.cfg.PageBytes/4 {
		return nil
	}
	pb, pr := w.cfg.PageBytes, int64(w.cfg.PageRows)
	for _, c := range f.cols {
		if c.pageFull(pb) || f.rows-c.pageFirstRow >= pr {
			if err := f.flushColumn(w, c); err != nil {
				return err
			}
		}
	}
	return nil
}

const pageCheckRows = 16

func (f *openFile) rollbackRow(keep int) {
	for _, c := range f.cols {
		c.rollback(int(f.rows - c.pageFirstRow))
		c.shrink(keep)
	}
}

func (f *openFile) flushColumn(w *Writer, c *column) error {
	if sf := w.layout.leafStat[c.spec.index]; sf != nil && sf.array {
		for i, r := range c.reps {
			if r == 0 && c.defs[i] < sf.nullDef {
				f.arrNull[c.spec.index]++
			}
		}
	}
	return c.flushPage(&w.enc, f.rows)
}

// capBytes is the capacity of the file's main buffers: its column chunks,
// page buffers and dictionaries (recycle keeps the larger of two files).
func (f *openFile) capBytes() int {
	n := 0
	for _, c := range f.cols {
		n += c.capBytes()
	}
	return n
}

// bufferedBytes estimates the memory the file holds.
func (f *openFile) bufferedBytes() int64 {
	n := 0
	for _, c := range f.cols {
		n += c.bufferedBytes()
	}
	return int64(n)
}

// heldBytes is the memory the file's buffers take (their capacity).
func (f *openFile) heldBytes() int64 {
	n := 0
	for _, c := range f.cols {
		n += c.heldBytes()
	}
	return int64(n)
}

// finish flushes the last pages and assembles the file: magic, column
// chunks (dictionary page first), column indexes, offset indexes, footer.
// It returns the file as segments (no copy of the chunks) and its size.
func (f *openFile) finish(w *Writer) ([][]byte, int64, error) {
	for _, c := range f.cols {
		if err := f.flushColumn(w, c); err != nil {
			return nil, 0, err
		}
	}
	segs := [][]byte{[]byte("PAR1")}
	off := int64(4)
	rg := format.RowGroup{NumRows: f.rows, FileOffset: 4}
	chunks := make([]format.ColumnChunk, len(f.cols))
	var totalUncompressed int64
	for i, c := range f.cols {
		start := off
		md := format.ColumnMetaData{
			Type:         format.Type(c.spec.kind),
			PathInSchema: c.spec.path,
			Codec:        c.codecKind(w),
			NumValues:    c.numVals,
		}
		var encs []format.Encoding
		var encStats []format.PageEncodingStats
		dp, dictUncompressed, err := c.dictPage(&w.enc)
		if err != nil {
			return nil, 0, err
		}
		if dp != nil {
			md.DictionaryPageOffset = off
			segs = append(segs, dp)
			off += int64(len(dp))
			md.TotalUncompressedSize += dictUncompressed
			encs = append(encs, format.Plain, format.RLEDictionary)
			encStats = append(encStats,
				format.PageEncodingStats{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1},
				format.PageEncodingStats{PageType: format.DataPage, Encoding: format.RLEDictionary, Count: int32(c.dictPages)})
		}
		if c.plainPgs > 0 {
			if dp == nil {
				encs = append(encs, format.Plain)
			}
			encStats = append(encStats, format.PageEncodingStats{PageType: format.DataPage, Encoding: format.Plain, Count: int32(c.plainPgs)})
		}
		if c.deltaPgs > 0 {
			encs = append(encs, format.DeltaBinaryPacked)
			encStats = append(encStats, format.PageEncodingStats{PageType: format.DataPage, Encoding: format.DeltaBinaryPacked, Count: int32(c.deltaPgs)})
		}
		encs = append(encs, format.RLE)
		md.Encoding = encs
		md.EncodingStats = encStats
		md.DataPageOffset = off
		segs = append(append(segs, c.sealed...), c.chunk)
		for j := range c.pages {
			c.pages[j].off += off
		}
		off += int64(c.chunkLen())
		md.TotalUncompressedSize += c.uncompr
		md.TotalCompressedSize = off - start
		if c.stats.has || c.stats.nullCount > 0 {
			md.Statistics = format.Statistics{NullCount: c.stats.nullCount}
			if c.stats.has && !(c.stats.nan && isFloat(c.spec)) {
				mn, mx, ok := c.stats.min, c.stats.max, true
				if c.spec.kind == 6 { // ByteArray
					mn = truncMin(mn)
					mx, ok = truncMax(mx)
				}
				if ok {
					md.Statistics.MinValue, md.Statistics.MaxValue = mn, mx
				}
			}
		}
		totalUncompressed += md.TotalUncompressedSize
		chunks[i] = format.ColumnChunk{FileOffset: start, MetaData: md}
	}
	rg.TotalByteSize = totalUncompressed
	rg.TotalCompressedSize = off - 4
	// Page index: column indexes, then offset indexes.
	for i, c := range f.cols {
		if c.noIndex || len(c.pages) == 0 {
			continue
		}
		ci := format.ColumnIndex{BoundaryOrder: format.Unordered}
		for _, p := range c.pages {
			ci.NullPages = append(ci.NullPages, p.nullPage)
			mn, mx := p.min, p.max
			if p.nullPage {
				mn, mx = []byte{}, []byte{}
			}
			ci.MinValues = append(ci.MinValues, mn)
			ci.MaxValues = append(ci.MaxValues, mx)
			ci.NullCounts = append(ci.NullCounts, p.nullCount)
		}
		b, err := w.enc.marshal(&ci)
		if err != nil {
			return nil, 0, err
		}
		chunks[i].ColumnIndexOffset = off
		chunks[i].ColumnIndexLength = int32(len(b))
		segs = append(segs, bytes.Clone(b))
		off += int64(len(b))
	}
	for i, c := range f.cols {
		if len(c.pages) == 0 {
			continue
		}
		var oi format.OffsetIndex
		for _, p := range c.pages {
			oi.PageLocations = append(oi.PageLocations, format.PageLocation{Offset: p.off, CompressedPageSize: int32(p.size), FirstRowIndex: p.firstRow})
		}
		b, err := w.enc.marshal(&oi)
		if err != nil {
			return nil, 0, err
		}
		chunks[i].OffsetIndexOffset = off
		chunks[i].OffsetIndexLength = int32(len(b))
		segs = append(segs, bytes.Clone(b))
		off += int64(len(b))
	}
	rg.Columns = chunks
	orders := make([]format.ColumnOrder, len(f.cols))
	for i := range orders {
		orders[i] = format.ColumnOrder{Value: &format.TypeDefinedOrder{}}
	}
	fmd := format.FileMetaData{
		Version:      1,
		Schema:       w.layout.elements,
		NumRows:      f.rows,
		RowGroups:    []format.RowGroup{rg},
		CreatedBy:    createdBy,
		ColumnOrders: orders,
		KeyValueMetadata: []format.KeyValue{
			{Key: parquetmeta.SparkVersionKey, Value: parquetmeta.SparkVersion},
		},
	}
	footer, err := w.enc.marshal(&fmd)
	if err != nil {
		return nil, 0, err
	}
	tail := make([]byte, 0, len(footer)+8)
	tail = append(tail, footer...)
	tail = binary.LittleEndian.AppendUint32(tail, uint32(len(footer)))
	tail = append(tail, "PAR1"...)
	segs = append(segs, tail)
	off += int64(len(tail))
	return segs, off, nil
}

// createdBy follows the "<app> version <semver> (build <hash>)" form
// readers parse to detect writer bugs.
const createdBy = "protolake version 0.1.0 (build writer)"

func isFloat(s *colSpec) bool { return s.kind == 4 || s.kind == 5 }

// SegmentsReader reads a data file's segments (size bytes in all) in order,
// as Put gets it; a SegmentStore reads the segments it keeps with it.
func SegmentsReader(segs [][]byte, size int64) io.Reader {
	rs := make([]io.Reader, len(segs))
	for i, s := range segs {
		rs[i] = bytes.NewReader(s)
	}
	return &fileReader{r: io.MultiReader(rs...), left: size}
}

// fileReader reads a data file. Its Len (the bytes not read yet, as
// bytes.Reader's) lets a store that keeps a copy of the file (storage/mem)
// allocate it at once: grown as it is read, a 10 MB file took 24 MB.
type fileReader struct {
	r    io.Reader
	left int64
}

func (f *fileReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.left -= int64(n)
	return n, err
}

// Len returns the number of bytes not read yet.
func (f *fileReader) Len() int { return int(f.left) }

// WriteTo writes the segments without an intermediate buffer.
func (f *fileReader) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, f.r)
	f.left -= n
	return n, err
}

func (c *column) codecKind(w *Writer) format.CompressionCodec {
	return w.enc.codec.kind
}
