package writer

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// numTable indexes the dictionary of an INT32, INT64, FLOAT or DOUBLE
// column by the values' bits. Unlike a byte-array column's dictionary,
// which emit fills value by value, it is built when a page is flushed, from
// the page's PLAIN values: the decode path stays as it is for every
// numeric column, and a column whose first page shows many distinct values
// (timestamps, ids, coordinates) pays one short pass over part of that
// page and nothing afterwards.
type numTable struct {
	slots []numSlot
	mask  uint64
	n     int
}

type numSlot struct {
	key uint64 // the value's bits
	idx int32  // entry index + 1; 0 = empty
}

// numDictShare is the most distinct values a first page may have, as a
// share (1/numDictShare) of its values, for the column to keep a
// dictionary: there the indexes take at most log2(values/8) bits and the
// dictionary a byte per value, so it beats what zstd makes of PLAIN values
// (a low-cardinality page of 8-byte integers compresses to about a byte a
// value) and costs no more than DELTA_BINARY_PACKED on clustered values,
// which have more distinct values than that.
const numDictShare = 8

func numHash(key uint64) uint64 {
	hi, lo := bits.Mul64(key^dictK0, dictK1)
	return hi ^ lo
}

func (t *numTable) reset() {
	clear(t.slots)
	t.n = 0
}

// grow doubles the table (64 slots at first) and re-inserts its keys.
func (t *numTable) grow() {
	old := t.slots
	t.slots = make([]numSlot, max(64, 2*len(old)))
	t.mask = uint64(len(t.slots) - 1)
	for _, s := range old {
		if s.idx != 0 {
			i := numHash(s.key) & t.mask
			for t.slots[i].idx != 0 {
				i = (i + 1) & t.mask
			}
			t.slots[i] = s
		}
	}
}

// indexValues sets e.ints to the dictionary indexes of the page's values,
// adding new values to the dictionary (c.dictData, PLAIN; c.dictOffs, one
// entry each so the dictionary's size and count are kept as for byte
// arrays). While the dictionary is empty (the first page with values) it
// gives up once more than 1/numDictShare of the page's values are
// distinct: it then empties the dictionary, turns it off for the rest of
// the file and returns false, and the page is written PLAIN or
// DELTA_BINARY_PACKED (it is a probe, compState: after pages of nulls the
// column's probe count is past it).
func (c *column) indexValues(e *encoder) bool {
	w := valueSize(c.spec)
	limit := math.MaxInt
	if len(c.dictOffs) == 0 {
		limit = c.nvals / numDictShare
	}
	t := &c.ndict
	e.ints = e.ints[:0]
	for off := 0; off < len(c.vals); off += w {
		var key uint64
		if w == 4 {
			key = uint64(binary.LittleEndian.Uint32(c.vals[off:]))
		} else {
			key = binary.LittleEndian.Uint64(c.vals[off:])
		}
		if 4*t.n >= 3*len(t.slots) {
			t.grow()
		}
		i := numHash(key) & t.mask
		for t.slots[i].idx != 0 && t.slots[i].key != key {
			i = (i + 1) & t.mask
		}
		s := &t.slots[i]
		if s.idx == 0 {
			if t.n >= limit {
				c.numDict = false
				c.comp.pages = 0 // this page is the first that may be DELTA: a probe
				t.reset()
				c.dictData, c.dictOffs = c.dictData[:0], c.dictOffs[:0]
				return false
			}
			c.dictOffs = append(c.dictOffs, uint32(len(c.dictData)))
			c.dictData = append(c.dictData, c.vals[off:off+w]...)
			t.n++
			*s = numSlot{key: key, idx: int32(t.n)}
		}
		e.ints = append(e.ints, s.idx-1)
	}
	return true
}
