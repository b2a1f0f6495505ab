package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The Parquet library trusts the sizes in a file's Thrift metadata and
// allocates what they say, so a corrupt checkpoint could make it allocate
// gigabytes and take the process down (an out-of-memory is not a panic that
// recover can catch). checkParquetBounds walks the footer and every page
// header with a bounded Thrift decoder first and rejects sizes that cannot
// be true for the bytes at hand.

// Limits for one page. Honest checkpoints use pages of about 1 MiB. A
// column chunk's total uncompressed size is not limited: the decoder never
// allocates by it (it reads the chunk page by page, each page checked
// here), and a legitimate checkpoint of a large table has chunks of
// gigabytes (Spark's and delta-rs's, or an old protolake's single row
// group).
const (
	maxPageBytes   = 256 << 20
	maxPageValues  = 64 << 20
	maxThriftDepth = 64
)

var errBadParquet = errors.New("malformed parquet")

// tval is one decoded Thrift compact-protocol value.
type tval struct {
	i      int64
	b      []byte
	fields map[int16]*tval
	list   []*tval
}

type tdec struct {
	b   []byte
	pos int
}

func (d *tdec) remaining() int { return len(d.b) - d.pos }

func (d *tdec) byte1() (byte, error) {
	if d.pos >= len(d.b) {
		return 0, fmt.Errorf("%w: truncated thrift", errBadParquet)
	}
	c := d.b[d.pos]
	d.pos++
	return c, nil
}

func (d *tdec) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad varint", errBadParquet)
	}
	d.pos += n
	return v, nil
}

func (d *tdec) zigzag() (int64, error) {
	u, err := d.uvarint()
	return int64(u>>1) ^ -int64(u&1), err
}

func (d *tdec) value(typ byte, depth int) (*tval, error) {
	if depth > maxThriftDepth {
		return nil, fmt.Errorf("%w: thrift nested too deeply", errBadParquet)
	}
	switch typ {
	case 1, 2: // bool inside a list: one byte
		c, err := d.byte1()
		return &tval{i: int64(c)}, err
	case 3:
		c, err := d.byte1()
		return &tval{i: int64(int8(c))}, err
	case 4, 5, 6:
		v, err := d.zigzag()
		return &tval{i: v}, err
	case 7:
		if d.remaining() < 8 {
			return nil, fmt.Errorf("%w: truncated double", errBadParquet)
		}
		d.pos += 8
		return &tval{}, nil
	case 8:
		n, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if n > uint64(d.remaining()) {
			return nil, fmt.Errorf("%w: binary of %d bytes with %d left", errBadParquet, n, d.remaining())
		}
		v := &tval{b: d.b[d.pos : d.pos+int(n)]}
		d.pos += int(n)
		return v, nil
	case 9, 10:
		h, err := d.byte1()
		if err != nil {
			return nil, err
		}
		size, et := uint64(h>>4), h&0x0f
		if size == 15 {
			if size, err = d.uvarint(); err != nil {
				return nil, err
			}
		}
		if size > uint64(d.remaining()) {
			return nil, fmt.Errorf("%w: list of %d elements with %d bytes left", errBadParquet, size, d.remaining())
		}
		v := &tval{list: make([]*tval, 0, size)}
		for i := uint64(0); i < size; i++ {
			e, err := d.value(et, depth+1)
			if err != nil {
				return nil, err
			}
			v.list = append(v.list, e)
		}
		return v, nil
	case 11:
		size, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return &tval{}, nil
		}
		if size > uint64(d.remaining())/2 {
			return nil, fmt.Errorf("%w: map of %d entries with %d bytes left", errBadParquet, size, d.remaining())
		}
		kv, err := d.byte1()
		if err != nil {
			return nil, err
		}
		for i := uint64(0); i < size; i++ {
			if _, err := d.value(kv>>4, depth+1); err != nil {
				return nil, err
			}
			if _, err := d.value(kv&0x0f, depth+1); err != nil {
				return nil, err
			}
		}
		return &tval{}, nil
	case 12:
		v := &tval{fields: map[int16]*tval{}}
		var last int16
		for {
			h, err := d.byte1()
			if err != nil {
				return nil, err
			}
			if h == 0 {
				return v, nil
			}
			delta, ft := h>>4, h&0x0f
			id := last + int16(delta)
			if delta == 0 {
				z, err := d.zigzag()
				if err != nil {
					return nil, err
				}
				if z < math.MinInt16 || z > math.MaxInt16 {
					return nil, fmt.Errorf("%w: field id %d", errBadParquet, z)
				}
				id = int16(z)
			}
			last = id
			var f *tval
			switch ft {
			case 1:
				f = &tval{i: 1}
			case 2:
				f = &tval{i: 0}
			default:
				if f, err = d.value(ft, depth+1); err != nil {
					return nil, err
				}
			}
			v.fields[id] = f
		}
	}
	return nil, fmt.Errorf("%w: unknown thrift type %d", errBadParquet, typ)
}

func (v *tval) field(id int16) *tval {
	if v == nil || v.fields == nil {
		return nil
	}
	return v.fields[id]
}

func (v *tval) int(id int16) (int64, bool) {
	f := v.field(id)
	if f == nil {
		return 0, false
	}
	return f.i, true
}

// checkParquetBounds validates the footer and page headers of a Parquet
// file against the file's size and the limits above.
func checkParquetBounds(data []byte) error {
	return checkParquetBoundsAt(bytes.NewReader(data), int64(len(data)))
}

// readFullAt reads len(b) bytes at off; a short read is errBadParquet
// (the file is shorter than its metadata says).
func readFullAt(ra io.ReaderAt, b []byte, off int64) error {
	n, err := ra.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %d bytes at %d: file truncated", errBadParquet, len(b), off)
	}
	return err
}

// checkParquetBoundsAt is checkParquetBounds reading the n-byte file
// through ra: the footer, then each page header, so that a checkpoint on
// disk is checked without being read into memory.
func checkParquetBoundsAt(ra io.ReaderAt, n int64) error {
	var head [4]byte
	var tail [8]byte
	if n < 12 {
		return fmt.Errorf("%w: no PAR1 magic", errBadParquet)
	}
	if err := readFullAt(ra, head[:], 0); err != nil {
		return err
	}
	if err := readFullAt(ra, tail[:], n-8); err != nil {
		return err
	}
	if string(head[:]) != "PAR1" || string(tail[4:]) != "PAR1" {
		return fmt.Errorf("%w: no PAR1 magic", errBadParquet)
	}
	flen := int64(binary.LittleEndian.Uint32(tail[:4]))
	if flen > n-12 {
		return fmt.Errorf("%w: footer of %d bytes in a %d-byte file", errBadParquet, flen, n)
	}
	footerStart := n - 8 - flen
	footer := make([]byte, flen)
	if err := readFullAt(ra, footer, footerStart); err != nil {
		return err
	}
	d := &tdec{b: footer}
	fmd, err := d.value(12, 0)
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	// Every checkpoint row costs some bytes (a path, a protocol…), so a
	// row count far beyond the file size is a lie that would only make the
	// reader spin.
	maxRows := n + 1024
	maxValues := 8*n + 1024
	if rows, _ := fmd.int(3); rows < 0 || rows > maxRows {
		return fmt.Errorf("%w: %d rows in a %d-byte file", errBadParquet, rows, n)
	}
	rgs := fmd.field(4)
	if rgs == nil {
		return nil
	}
	pc := &pageChecker{ra: ra, bodyLen: footerStart}
	for _, rg := range rgs.list {
		if rows, _ := rg.int(3); rows < 0 || rows > maxRows {
			return fmt.Errorf("%w: row group of %d rows in a %d-byte file", errBadParquet, rows, n)
		}
		cols := rg.field(1)
		if cols == nil {
			continue
		}
		for _, cc := range cols.list {
			md := cc.field(3)
			if md == nil {
				return fmt.Errorf("%w: column chunk without metadata", errBadParquet)
			}
			if err := pc.checkColumnChunk(md, maxValues); err != nil {
				return err
			}
		}
	}
	return nil
}

// pageChecker reads page headers from the body of a file (what precedes
// the footer) through a window it reuses.
type pageChecker struct {
	ra      io.ReaderAt
	bodyLen int64
	win     []byte
}

// Page header windows: a header is read through a window of
// pageHeaderWindow bytes, grown up to maxPageHeaderBytes when it does not
// fit (page statistics can hold long min/max values).
const (
	pageHeaderWindow   = 64 << 10
	maxPageHeaderBytes = 16 << 20
)

// header decodes the page header at pos (the chunk ends at end) and
// returns it with its encoded length.
func (c *pageChecker) header(pos, end int64) (*tval, int64, error) {
	size := min(end-pos, pageHeaderWindow)
	for {
		if int64(cap(c.win)) < size {
			c.win = make([]byte, size)
		}
		win := c.win[:size]
		if err := readFullAt(c.ra, win, pos); err != nil {
			return nil, 0, err
		}
		d := &tdec{b: win}
		ph, err := d.value(12, 0)
		if err == nil {
			return ph, int64(d.pos), nil
		}
		if size == end-pos || size >= maxPageHeaderBytes {
			return nil, 0, err
		}
		size = min(end-pos, size*8, maxPageHeaderBytes)
	}
}

// checkColumnChunk validates a column chunk's extent and every page
// header in it.
func (c *pageChecker) checkColumnChunk(md *tval, maxValues int64) error {
	dataOff, ok := md.int(9)
	if !ok {
		return fmt.Errorf("%w: column chunk without data page offset", errBadParquet)
	}
	start := dataOff
	if dict, ok := md.int(11); ok && dict > 0 && dict < start {
		start = dict
	}
	total, _ := md.int(7)
	uncompressed, _ := md.int(6)
	nvals, _ := md.int(5)
	end := start + total
	if start < 4 || total < 0 || end > c.bodyLen || end < start {
		return fmt.Errorf("%w: column chunk [%d, %d) outside the file", errBadParquet, start, end)
	}
	if uncompressed < 0 || nvals < 0 || nvals > maxValues {
		return fmt.Errorf("%w: column chunk claims %d bytes, %d values", errBadParquet, uncompressed, nvals)
	}
	for pos := start; pos < end; {
		ph, hlen, err := c.header(pos, end)
		if err != nil {
			return fmt.Errorf("page header at %d: %w", pos, err)
		}
		usize, _ := ph.int(2)
		csize, ok := ph.int(3)
		if !ok || csize < 0 || usize < 0 || usize > maxPageBytes || hlen+csize > end-pos {
			return fmt.Errorf("%w: page at %d: sizes %d/%d", errBadParquet, pos, csize, usize)
		}
		for _, h := range []int16{5, 7, 8} {
			if sub := ph.field(h); sub != nil {
				for id, f := range sub.fields {
					if id <= 6 && f.list == nil && f.b == nil && (f.i < 0 || f.i > min(maxPageValues, maxValues)) {
						return fmt.Errorf("%w: page at %d: field %d.%d = %d", errBadParquet, pos, h, id, f.i)
					}
				}
			}
		}
		pos += hlen + csize
	}
	return nil
}
